"""Kafka, then PostgreSQL, stopped for a few seconds under a running relay and consumer.

Both processes must ride it out by themselves (no restart by the test) and, once the component
is back, apply every event exactly once. Each outage begins while both hold work, which the test
arranges and checks rather than hopes for: the consumer is paused (SIGSTOP) while events reach
Kafka, then the relay while rows reach the outbox, and the component stops with those 250 events
not applied and those 250 rows not published (counted while both are frozen); they are resumed
into the outage. These tests stop the shared devstack's components, so they run in the serial
fault phase of ``make test``.
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
from tests.fault.support import ProcessUnderTest, devstack_command

pytestmark = [pytest.mark.fault, pytest.mark.integration]

PROC = Path(__file__).with_name("pipeline_proc.py")


async def _applied(pool: asyncpg.Pool, n: int) -> bool:
    try:
        return await pool.fetchval("SELECT count(DISTINCT event_id) FROM effects") >= n
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return False


async def _unpublished(pool: asyncpg.Pool, n: int) -> bool:
    return await pool.fetchval("SELECT count(*) FROM outbox") == n


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
    source = await db.create_pool(producer_dsn, min_size=0, max_size=1)

    async def hold_work(start: int) -> None:
        """Events ``start``.. in Kafka that the consumer has not applied, and the 250 after them
        in the outbox, not published: both processes paused, so it stays so until resumed."""
        consumer.pause()
        await _write(producer_dsn, topic, start, 250)
        await wait_until(lambda: _unpublished(source, 0))
        relay.pause()
        await _write(producer_dsn, topic, start + 250, 250)
        assert await _unpublished(source, 250), "the relay published while paused"
        assert await check.fetchval("SELECT count(*) FROM effects") == start - 1

    def resume() -> None:
        relay.resume()
        consumer.resume()

    try:
        relay.start()
        consumer.start()
        await _write(producer_dsn, topic, 1, 500)
        await wait_until(lambda: _applied(check, 500), timeout_s=60)

        await hold_work(501)
        devstack_command("stop", "kafka")
        resume()
        await asyncio.sleep(3)
        # the outage held the relay's rows (the consumer may have applied records a fetch had
        # brought before it: the broker answers a waiting fetch into a paused process's socket)
        assert await _unpublished(source, 250), "published while Kafka was down"
        devstack_command("up")
        await wait_until(lambda: _applied(check, 1000), timeout_s=120, interval_s=0.5)

        await hold_work(1001)
        devstack_command("stop", "postgres")
        resume()
        with pytest.raises(OSError):  # it is down: they resumed into the outage
            await asyncpg.connect(consumer_dsn, timeout=5)
        await asyncio.sleep(3)
        devstack_command("up")
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
        await source.close()
        devstack_command("up")
