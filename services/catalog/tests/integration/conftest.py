from __future__ import annotations

import re
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
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://catalog/internal/v1",
        auth=AsGateway(),
    ) as client:
        yield client


class AsGateway(httpx.Auth):
    """The actor header the gateway would send: an owner of the organization the test last
    named in a path (the gateway resolves it for every request; the catalog scopes to it)."""

    def __init__(self) -> None:
        self.user_id = uuid.uuid4()
        self.organization: uuid.UUID | None = None

    def auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def]
        named = re.match(r"^/internal/v1/organizations/([0-9a-f-]{36})", request.url.path)
        if named:
            self.organization = uuid.UUID(named.group(1))
        actor = Actor(
            type="user",
            id=str(self.user_id),
            user_id=self.user_id,
            organization_role="owner",
            organization_id=self.organization,
        )
        request.headers[ACTOR_HEADER] = actor.header()
        yield request
