"""Fixtures shared by libs' integration tests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import asyncpg
import pytest

from slipway_libs import db

TenantTable = Callable[[Sequence[uuid.UUID], int], Awaitable[asyncpg.Pool]]


@pytest.fixture
async def tenant_table(database_factory) -> AsyncIterator[TenantTable]:
    """``await tenant_table(rows, size)``: a ``db.create_pool`` pool of ``size`` sessions on a
    fresh database whose table ``things`` is under a row-level policy (``tenant_visible``, forced
    on the owner too), holding one row per organization id in ``rows``, in that order (their
    ``id``). The pools are closed at the end of the test."""
    pools: list[asyncpg.Pool] = []

    async def make(rows: Sequence[uuid.UUID], size: int) -> asyncpg.Pool:
        dsn = await database_factory("binding")
        pool = await db.create_pool(dsn, min_size=size, max_size=size)
        pools.append(pool)
        async with pool.acquire() as conn:
            await conn.execute(
                """
                CREATE TABLE things (id serial PRIMARY KEY, organization_id uuid NOT NULL);
                ALTER TABLE things ENABLE ROW LEVEL SECURITY;
                ALTER TABLE things FORCE ROW LEVEL SECURITY;
                CREATE POLICY tenant ON things USING (tenant_visible(organization_id))
                    WITH CHECK (tenant_visible(organization_id));
                """
            )
            await conn.executemany(
                "INSERT INTO things (organization_id) VALUES ($1)", [(o,) for o in rows]
            )
        return pool

    yield make
    for pool in pools:
        await pool.close()
