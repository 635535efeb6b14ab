"""Security review of the session-held tenant binding (``slipway_libs.db``, bf4a5cb): against the
real PostgreSQL, what a pooled connection remembers of its binding is never other than what its
session holds (or "unknown"), whatever ends a request: a cancellation landing while the binding's
statement is in flight, cancellations repeated at every await as anyio's cancel scopes deliver
them, a backend killed mid-request, a rolled-back transaction or savepoint, a transaction-local
``set_config`` of the binding (the idempotency sweep's). Each case then checks the rows the next
request of each organization, and the platform, sees."""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
import pytest

from slipway_libs import db
from slipway_libs.tenancy import GUC, current_organization

pytestmark = pytest.mark.integration

A, B = uuid.uuid4(), uuid.uuid4()
SEEN = {A: [A, A], B: [B], None: [A, A, B]}


@pytest.fixture
async def pool(tenant_table) -> asyncpg.Pool:
    return await tenant_table([A, A, B], 1)  # one session, reused by every request


async def _seen(conn: asyncpg.Connection) -> list[uuid.UUID]:
    return [r[0] for r in await conn.fetch("SELECT organization_id FROM things ORDER BY id")]


async def _as(
    organization: uuid.UUID | None,
    pool: asyncpg.Pool,
    *,
    read: bool = True,
    then: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
) -> list[uuid.UUID]:
    """What a request of ``organization`` sees, through ``reading`` or ``transaction``."""
    token = current_organization.set(organization)
    try:
        async with (db.reading if read else db.transaction)(pool) as conn:
            seen = await _seen(conn)
            if then is not None:
                await then(conn)
            return seen
    finally:
        current_organization.reset(token)


def _sessions(pool: asyncpg.Pool, *, idle: bool = True) -> list[asyncpg.Connection]:
    """White box: the pool's live connections (idle: back in the pool; a cancelled request's
    release goes on in a task of its own, shielded by asyncpg)."""
    return [
        h._con
        for h in pool._holders
        if h._con is not None and not h._con.is_closed() and (h._in_use is None or not idle)
    ]


async def _memory_matches_the_session(pool: asyncpg.Pool) -> None:
    """The invariant the design rests on: a connection's memory is "unknown" or the truth."""
    for conn in _sessions(pool):
        held = await conn.fetchval("SELECT current_setting($1, true)", GUC) or ""
        bound = conn._bound
        if bound is not db._UNKNOWN:
            assert held == ("" if bound is None else str(bound)), (bound, held)


async def _every_party_sees_its_rows(pool: asyncpg.Pool) -> None:
    for organization in (A, B, None, A):
        assert await _as(organization, pool) == SEEN[organization], organization
    async with pool.acquire() as conn:  # the platform's plain acquire
        assert await _seen(conn) == SEEN[None]
    await _memory_matches_the_session(pool)


async def test_every_way_a_request_ends_leaves_the_memory_true(pool: asyncpg.Pool) -> None:
    """Commits, errors, rolled-back savepoints, a transaction-local unbinding (the idempotency
    sweep's) and the platform's own transactions, in a random order on one session."""

    async def fail(conn: asyncpg.Connection) -> None:
        raise LookupError("the route failed")

    async def savepoint_rolled_back(conn: asyncpg.Connection) -> None:
        with contextlib.suppress(LookupError):
            async with conn.transaction():
                await conn.execute("SELECT set_config($1, '', true)", GUC)
                raise LookupError

    async def local_unbinding(conn: asyncpg.Connection) -> None:
        bound = await conn.fetchval("SELECT current_setting($1, true)", GUC)
        await conn.execute("SELECT set_config($1, '', true)", GUC)
        await conn.execute("SELECT set_config($1, $2, true)", GUC, bound or "")

    endings = [None, fail, savepoint_rolled_back, local_unbinding]
    rng = random.Random(1505)
    for _ in range(120):
        organization, ending = rng.choice([A, B, None]), rng.choice(endings)
        read = ending in (None, fail) and rng.random() < 0.5
        with contextlib.suppress(LookupError):
            assert await _as(organization, pool, read=read, then=ending) == SEEN[organization]
        if rng.random() < 0.3:
            async with pool.acquire() as conn, conn.transaction():
                assert await _seen(conn) == SEEN[None]
        await _memory_matches_the_session(pool)
    await _every_party_sees_its_rows(pool)


async def test_a_cancellation_while_the_binding_is_in_flight(pool: asyncpg.Pool) -> None:
    """Cancelled exactly while the binding's statement awaits PostgreSQL (the session may
    already be bound to the new organization, the connection cannot know): asyncpg closes the
    connection whose ``setup`` failed, and the next request of any party sees its own rows."""
    landed = 0
    for i in range(60):
        # each request of another organization than the one before: a statement each time
        first, then = (A, B, None)[i % 3], (A, B, None)[(i + 2) % 3]
        task = asyncio.create_task(_as(first, pool, read=i % 2 == 0))
        while not task.done():
            if any(c._bound is db._UNKNOWN for c in _sessions(pool, idle=False)):
                landed += task.cancel()
                break
            await asyncio.sleep(0)
        await asyncio.gather(task, return_exceptions=True)
        await _memory_matches_the_session(pool)
        assert await _as(then, pool, read=i % 3 == 0) == SEEN[then]
    assert landed > 30, f"only {landed} cancellations landed while the binding was in flight"
    await _every_party_sees_its_rows(pool)


async def test_cancellations_at_real_times_and_repeated(pool: asyncpg.Pool) -> None:
    """Cancelled after a random real delay (any await: acquire, bind, query, commit, release),
    once, or again every 100 us until the task ends, as an anyio cancel scope re-delivers it
    (that also cancels asyncpg's own cleanup: the rollback, the close of a failed setup)."""
    rng = random.Random(77)
    cancelled = 0
    for _ in range(200):
        first, then = rng.choice([A, B, None]), rng.choice([A, B, None])
        task = asyncio.create_task(_as(first, pool, read=rng.random() < 0.5))
        await asyncio.sleep(rng.uniform(0, 0.004))
        if rng.random() < 0.5:
            cancelled += task.cancel()
        else:
            while not task.done():
                cancelled += task.cancel()
                await asyncio.sleep(0.0001)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(task, return_exceptions=True)
        await _memory_matches_the_session(pool)
        assert await _as(then, pool, read=rng.random() < 0.5) == SEEN[then]
    assert cancelled > 20, f"only {cancelled} cancellations came before the task ended"
    await _every_party_sees_its_rows(pool)


async def test_a_backend_killed_mid_request(pool: asyncpg.Pool) -> None:
    """The session bound to the request's organization dies under it: the pool's next session
    is a new one, unbound, and remembered as such."""
    for organization in (A, B):

        async def killed(conn: asyncpg.Connection) -> None:
            pid = conn.get_server_pid()
            other = await asyncpg.connect(pool._connect_args[0])  # the pool's own DSN
            try:
                await other.execute("SELECT pg_terminate_backend($1)", pid)
            finally:
                await other.close()
            await _seen(conn)

        # asyncpg says so as an admin shutdown, a lost connection or (the termination notice
        # read while idle) an InternalClientError
        dead = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError)
        with pytest.raises((*dead, ConnectionError)):
            await _as(organization, pool, then=killed)
        assert await _as(None, pool) == SEEN[None]
        assert await _as(organization, pool) == SEEN[organization]
    await _every_party_sees_its_rows(pool)


async def test_concurrent_requests_with_cancellations_see_their_own_rows(
    tenant_table,
) -> None:
    """Three sessions shared by many concurrent requests of A, B and the platform, a fifth of
    them cancelled at random times: no request sees a row but its own organization's."""
    pool = await tenant_table([A, A, B], 3)
    rng = random.Random(9)
    wrong: list[tuple[uuid.UUID | None, list[uuid.UUID]]] = []

    async def one(organization: uuid.UUID | None, read: bool) -> None:
        seen = await _as(organization, pool, read=read)
        if seen != SEEN[organization]:
            wrong.append((organization, seen))

    for _ in range(10):
        tasks = [
            asyncio.create_task(one(rng.choice([A, B, None]), rng.random() < 0.5))
            for _ in range(30)
        ]
        await asyncio.sleep(rng.uniform(0, 0.003))
        for task in rng.sample(tasks, 6):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await _memory_matches_the_session(pool)
    assert wrong == []
    await _every_party_sees_its_rows(pool)
