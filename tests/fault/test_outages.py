"""Kafka, then PostgreSQL, stopped for a few seconds under a running relay and consumer.

Both processes must ride it out by themselves (no restart by the test) and, once the component
is back, apply every event exactly once. These tests stop the shared devstack's components, so
they run in the serial fault phase of ``make test``.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest

from slipway_libs import db
from slipway_libs.testing.pipeline import EFFECTS_DDL, counted, wait_until, write_events
from tests.fault.support import ProcessUnderTest, devstack_command, outage

pytestmark = [pytest.mark.fault, pytest.mark.integration]

PROC = Path(__file__).with_name("pipeline_proc.py")


async def _applied(pool: asyncpg.Pool, n: int) -> bool:
    try:
        return await pool.fetchval("SELECT count(DISTINCT event_id) FROM effects") >= n
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return False


async def _write(dsn: str, topic: str, start: int, count: int) -> None:
    pool = await db.create_pool(dsn, max_size=2)
    try:
        for i in range(start, start + count, 50):
            await write_events(pool, topic, [counted("k", j) for j in range(i, i + 50)])
    finally:
        await pool.close()


async def test_relay_and_consumer_resume_after_kafka_and_postgres_outages(
    database_factory, devstack, topic_factory
) -> None:
    producer_dsn = await database_factory("outage_producer")
    consumer_dsn = await database_factory("outage_consumer")
    topic = await topic_factory(partitions=3)
    group = f"outage-{uuid.uuid4().hex[:8]}"
    setup = await db.connect(consumer_dsn)
    await setup.execute(EFFECTS_DDL)
    await setup.close()
    kafka = devstack.kafka.bootstrap_servers  # the processes authenticate as the admin
    relay = ProcessUnderTest([sys.executable, str(PROC), "relay", producer_dsn, kafka])
    consumer = ProcessUnderTest(
        [sys.executable, str(PROC), "consumer", consumer_dsn, kafka, topic, group]
    )
    check = await db.create_pool(consumer_dsn, min_size=0, max_size=1)
    try:
        relay.start()
        consumer.start()
        await _write(producer_dsn, topic, 1, 500)
        await wait_until(lambda: _applied(check, 500), timeout_s=60)

        devstack_command("stop", "kafka")
        await _write(producer_dsn, topic, 501, 500)  # the outbox keeps them meanwhile
        await asyncio.sleep(3)
        devstack_command("up")
        await wait_until(lambda: _applied(check, 1000), timeout_s=120, interval_s=0.5)

        await _write(producer_dsn, topic, 1001, 500)
        await outage("postgres", 3)
        await wait_until(lambda: _applied(check, 1500), timeout_s=120, interval_s=0.5)

        assert relay.process is not None and relay.process.poll() is None, "relay died"
        assert consumer.process is not None and consumer.process.poll() is None, "consumer died"
        total, distinct = await check.fetchrow(
            "SELECT count(*), count(DISTINCT event_id) FROM effects"
        )
        assert (total, distinct) == (1500, 1500)
        seqs = [r["seq"] for r in await check.fetch("SELECT seq FROM effects ORDER BY id")]
        assert seqs == list(range(1, 1501))
    finally:
        relay.stop()
        consumer.stop()
        await check.close()
        devstack_command("up")
