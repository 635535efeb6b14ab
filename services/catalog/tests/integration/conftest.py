from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from slipway_catalog.adapters import KubernetesProbe
from slipway_catalog.api.routes import build_router
from slipway_catalog.bootstrap import DEFINITION
from slipway_catalog.config import CatalogSettings
from slipway_catalog.usecases.deps import Deps
from slipway_libs import db
from slipway_libs.actor import ACTOR_HEADER, Actor
from slipway_libs.crypto import new_key_setting
from slipway_libs.http import create_app


@pytest.fixture
async def catalog_db(database_factory) -> AsyncIterator[tuple[str, asyncpg.Pool]]:
    dsn = await database_factory("catalog", DEFINITION.migrations)
    pool = await db.create_pool(dsn, max_size=5)
    yield dsn, pool
    await pool.close()


@pytest.fixture
def deps() -> Deps:
    settings = CatalogSettings(database_url="unused", sealing_keys=new_key_setting("t1"))
    return Deps.from_settings(settings)


@pytest.fixture
async def api(catalog_db, deps) -> AsyncIterator[httpx.AsyncClient]:
    router = build_router(catalog_db[1], deps, KubernetesProbe(2.0, deps.egress), None)
    app = create_app(service="catalog", routers=[router])
    actor = Actor(
        type="user", id=str(uuid.uuid4()), user_id=uuid.uuid4(), organization_role="owner"
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://catalog/internal/v1",
        headers={ACTOR_HEADER: actor.header()},
    ) as client:
        yield client
