from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from slipway_libs import db
from slipway_libs.actor import ACTOR_HEADER, Actor
from slipway_libs.http import create_app
from slipway_logs.api.routes import build_router
from slipway_logs.bootstrap import DEFINITION


@pytest.fixture
async def logs_db(database_factory) -> AsyncIterator[tuple[str, asyncpg.Pool]]:
    dsn = await database_factory("logs", DEFINITION.migrations)
    pool = await db.create_pool(dsn, max_size=5)
    yield dsn, pool
    await pool.close()


@pytest.fixture
async def pool(logs_db) -> asyncpg.Pool:
    return logs_db[1]


@pytest.fixture
async def api(pool) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(service="logs", routers=[build_router(pool, {})])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://logs/internal/v1"
    ) as client:
        yield client


def member_of(organization_id: uuid.UUID) -> dict[str, str]:
    """The actor header the gateway sends for a member of ``organization_id``."""
    actor = Actor(
        type="user",
        id=str(uuid.uuid4()),
        user_id=uuid.uuid4(),
        organization_role="viewer",
        organization_id=organization_id,
    )
    return {ACTOR_HEADER: actor.header()}
