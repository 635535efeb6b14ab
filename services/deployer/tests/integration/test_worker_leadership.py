"""The worker's leadership against the real PostgreSQL, with the runtime faked: it steps down the
moment its lock's connection is lost (it used to go on leading until its next heartbeat, up to
``reconcile_s`` later, while a standby could take the lock), and a bug is raised instead of being
retried forever as a database outage."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any, cast

import asyncpg
import pytest

from slipway_deployer.adapters.runtime import ClusterAccess, Databases, Runtime
from slipway_deployer.adapters.runtime.registry import Runtimes
from slipway_deployer.adapters.signals import Signals
from slipway_deployer.bootstrap import DEFINITION
from slipway_deployer.usecases.steps import Tools
from slipway_deployer.worker import _WORKER_LOCK as WORKER_LOCK
from slipway_deployer.worker import Worker
from slipway_libs import db
from slipway_libs.crypto import Sealer, new_key_setting

pytestmark = pytest.mark.integration


@pytest.fixture
async def deployer_db(database_factory) -> AsyncIterator[tuple[str, asyncpg.Pool]]:
    dsn = await database_factory("deployer", DEFINITION.migrations)
    pool = await db.create_pool(dsn, max_size=4)
    yield dsn, pool
    await pool.close()


class FakeRuntime:
    def __init__(self) -> None:
        self.adopted = 0
        self.closed = 0

    async def adopt(self) -> list[str]:
        self.adopted += 1
        return []

    async def close(self) -> None:
        self.closed += 1


async def unreachable(access: ClusterAccess) -> None:
    raise AssertionError("these tests deploy nothing")


class FakeLive:
    async def aclose(self) -> None:
        return None


def tools_for(pool: asyncpg.Pool, runtime: FakeRuntime) -> Tools:
    settings = SimpleNamespace(
        max_parallel_deployments=2, poll_s=0.1, reconcile_s=3600.0, monitor_s=3600.0
    )
    fake: Any = SimpleNamespace(
        pool=pool,
        settings=settings,
        runtimes=Runtimes(
            local_runtime=cast(Runtime, runtime),
            local_databases=cast(Databases, FakeRuntime()),
            transport=Sealer.from_setting(new_key_setting("t")),
            reach=unreachable,
            opener=None,
        ),
        live=FakeLive(),
        signals=Signals(),
    )
    return cast(Tools, fake)


async def until(condition, what: str, timeout_s: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        if loop.time() > deadline:
            pytest.fail(f"{what} within {timeout_s:g} s")
        await asyncio.sleep(0.02)


async def leader_backend(pool: asyncpg.Pool) -> int | None:
    """The session holding the worker's lock (a bigint key: its low half in ``objid``), not a
    pooled connection holding a transaction's advisory lock of the queue."""
    async with pool.acquire() as conn:
        return await conn.fetchval(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND objid = $1 AND objsubid = 1"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            WORKER_LOCK,
        )


async def past_first_heartbeat(pool: asyncpg.Pool, backend: int) -> None:
    """Until the leader's connection has run its first still-the-leader check: the next one is
    ``reconcile_s`` (an hour) away."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while loop.time() < deadline:
        async with pool.acquire() as conn:
            last = await conn.fetchval("SELECT query FROM pg_stat_activity WHERE pid = $1", backend)
        if last == "SELECT 1":
            return
        await asyncio.sleep(0.02)
    pytest.fail("the worker never checked its leadership")


async def test_the_worker_steps_down_as_soon_as_its_lock_s_connection_is_lost(
    deployer_db,
) -> None:
    dsn, pool = deployer_db
    runtime = FakeRuntime()
    worker = Worker(pool, dsn, lambda: tools_for(pool, runtime))
    task = asyncio.create_task(worker.run())
    try:
        await until(lambda: runtime.adopted == 1, "the worker did not lead")
        backend = await leader_backend(pool)
        assert backend is not None
        await past_first_heartbeat(pool, backend)
        async with pool.acquire() as conn:
            await conn.execute("SELECT pg_terminate_backend($1)", backend)
        # reconcile_s is an hour: only the connection's loss can end the term this soon
        await until(lambda: runtime.closed == 1, "the worker went on leading")
        await until(lambda: runtime.adopted == 2, "the worker did not lead again")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_bug_in_the_worker_is_raised_not_retried_as_an_outage(database_factory) -> None:
    dsn = await database_factory("nodeployer")  # no deployer tables: its queries are wrong here
    pool = await db.create_pool(dsn, max_size=2)
    try:
        runtime = FakeRuntime()
        worker = Worker(pool, dsn, lambda: tools_for(pool, runtime))
        with pytest.raises(asyncpg.UndefinedTableError):
            await asyncio.wait_for(worker.run(), 30)
        assert runtime.adopted == 1  # once: not led again and again
    finally:
        await pool.close()
