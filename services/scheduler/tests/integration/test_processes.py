"""Two scheduler processes on one database fire each due timer exactly once, one of them
SIGKILLed mid-batch: what it committed stays fired, what it held rolls back and the survivor
fires it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

pytestmark = pytest.mark.integration

TIMERS = 3000
# waits, not speed (bench/ measures that): two Python processes starting and firing on a
# crowded machine (load far above its cores) took over 60 s
WAIT_S = 300
PROCESS = Path(__file__).with_name("timer_process.py")


async def _due_timers(pool: asyncpg.Pool) -> None:
    """Yearly timers, all due a minute ago: each fires once, then not before next January."""
    due = datetime.now(UTC) - timedelta(minutes=1)
    org, env = uuid.uuid4(), uuid.uuid4()
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO timers (kind, target_id, organization_id, environment_id, expression,"
            " timezone, next_fire_at) SELECT 'cron', t, $2, $3, '0 0 1 1 *', 'UTC', $4"
            " FROM unnest($1::uuid[]) AS t",
            [uuid.uuid4() for _ in range(TIMERS)],
            org,
            env,
            due,
        )


async def _count(pool: asyncpg.Pool, sql: str) -> int:
    async with pool.acquire() as conn:
        return int(await conn.fetchval(sql))


def _start(dsn: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(PROCESS), dsn, "25"],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def test_two_processes_fire_each_timer_once_with_one_killed_mid_batch(scheduler_db) -> None:
    dsn, pool = scheduler_db
    await _due_timers(pool)
    first, second = _start(dsn), _start(dsn)
    try:
        deadline = time.monotonic() + WAIT_S
        # kill the first once both have fired some: it is then mid-batch or between two
        while (fired := await _count(pool, "SELECT count(*) FROM outbox")) < TIMERS // 4:
            assert time.monotonic() < deadline, f"{fired} of {TIMERS // 4} fired in {WAIT_S} s"
            assert first.poll() is None and second.poll() is None, "a timer process died"
            await asyncio.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        due = "SELECT count(*) FROM timers WHERE next_fire_at < now()"
        assert await _count(pool, due) > 0, "killed too late: nothing left for the survivor"
        deadline = time.monotonic() + WAIT_S
        while await _count(pool, due):
            assert time.monotonic() < deadline, "the survivor did not fire the rest"
            assert second.poll() is None, second.stderr.read() if second.stderr else ""
            await asyncio.sleep(0.1)
    finally:
        for process in (first, second):
            if process.poll() is None:
                process.kill()
            process.wait(10)

    assert await _count(pool, "SELECT count(*) FROM outbox") == TIMERS
    assert (
        await _count(
            pool, "SELECT count(DISTINCT payload::jsonb #>> '{data,service_id}') FROM outbox"
        )
        == TIMERS
    )
    assert await _count(pool, "SELECT count(*) FROM timers WHERE fired = 1") == TIMERS
