"""The tenant binding lives in the pooled session and is set only when it changes
(``slipway_libs.db``): against the real PostgreSQL, under a row-level policy, a connection
reused by another organization, by the platform (a plain ``pool.acquire()``) or after an
interrupted acquire never shows another tenant's rows, and never hides rows from the platform."""

from __future__ import annotations

import asyncio
import random
import uuid

import asyncpg
import pytest

from slipway_libs import db
from slipway_libs.tenancy import GUC, current_organization

pytestmark = pytest.mark.integration

A, B = uuid.uuid4(), uuid.uuid4()


@pytest.fixture
async def pool(tenant_table) -> asyncpg.Pool:
    # one connection: every acquire below reuses the session the previous one left
    return await tenant_table([A, A, B], 1)


async def _seen(conn: asyncpg.Connection) -> list[uuid.UUID]:
    return [r[0] for r in await conn.fetch("SELECT organization_id FROM things ORDER BY id")]


async def _as(organization: uuid.UUID | None, pool: asyncpg.Pool, *, read: bool) -> list[uuid.UUID]:
    """What a request of ``organization`` sees, through ``reading`` or ``transaction``."""
    token = current_organization.set(organization)
    try:
        async with (db.reading if read else db.transaction)(pool) as conn:
            return await _seen(conn)
    finally:
        current_organization.reset(token)


@pytest.mark.parametrize("read", [True, False], ids=["reading", "transaction"])
async def test_each_request_sees_its_organization_whoever_used_the_session_before(
    pool: asyncpg.Pool, read: bool
) -> None:
    assert await _as(A, pool, read=read) == [A, A]
    assert await _as(A, pool, read=read) == [A, A]  # the same binding, kept
    assert await _as(B, pool, read=read) == [B]
    async with pool.acquire() as conn:  # the platform (a relay, a consumer): every row
        assert await _seen(conn) == [A, A, B]
    assert await _as(None, pool, read=read) == [A, A, B]
    assert await _as(A, pool, read=read) == [A, A]


async def test_a_write_of_another_tenant_is_refused_and_a_rollback_keeps_the_binding(
    pool: asyncpg.Pool,
) -> None:
    token = current_organization.set(A)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with db.transaction(pool) as conn:
                await conn.execute("INSERT INTO things (organization_id) VALUES ($1)", B)
        # the failed transaction rolled back; the session is still bound to A, not unbound
        async with db.reading(pool) as conn:
            assert await _seen(conn) == [A, A]
    finally:
        current_organization.reset(token)


async def test_an_acquire_inside_a_request_is_the_platforms(database_factory) -> None:
    """As before the binding moved into the session: only ``transaction`` and ``reading`` bind."""
    pool = await db.create_pool(await database_factory("binding"), min_size=2, max_size=2)
    try:
        async with pool.acquire() as conn:
            await conn.execute("CREATE TABLE t (organization_id uuid)")
        token = current_organization.set(A)
        try:
            async with db.reading(pool) as bound, pool.acquire() as plain:
                assert await bound.fetchval("SELECT current_setting($1, true)", GUC) == str(A)
                assert await plain.fetchval("SELECT current_setting($1, true)", GUC) in ("", None)
        finally:
            current_organization.reset(token)
    finally:
        await pool.close()


async def test_an_acquire_cancelled_at_any_point_leaves_no_binding_behind(
    pool: asyncpg.Pool,
) -> None:
    """Requests cancelled after a random number of scheduling steps (before, during or after
    the binding's statement); after each, the next request sees exactly its own rows."""
    rng = random.Random(15)
    cancelled = 0
    for _ in range(150):
        first, then = rng.choice([A, B, None]), rng.choice([A, B, None])
        task = asyncio.create_task(_as(first, pool, read=rng.random() < 0.5))
        for _ in range(rng.randrange(8)):
            await asyncio.sleep(0)
        cancelled += task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        expected = {A: [A, A], B: [B], None: [A, A, B]}[then]
        assert await _as(then, pool, read=rng.random() < 0.5) == expected
    assert cancelled > 10, "the cancellations all came too late to test anything"


@pytest.mark.parametrize("read", [True, False], ids=["reading", "transaction"])
async def test_a_pool_that_does_not_bind_is_refused_not_read_unfiltered(
    database_factory, read: bool
) -> None:
    """Fail closed: a pool made without ``db.create_pool`` (no binding on acquire) given to a
    request would read every tenant's rows; it is refused before any statement."""
    dsn = await database_factory("unbound")
    plain = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
    assert plain is not None
    token = current_organization.set(A)
    try:
        with pytest.raises(RuntimeError, match="not bound to the request's organization"):
            async with (db.reading if read else db.transaction)(plain):
                pass
    finally:
        current_organization.reset(token)
        await plain.close()
