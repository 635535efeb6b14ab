"""10,000 events through the outbox, applied exactly once while relay and consumer are SIGKILLed.

The writer commits events (keys ``k0..k49``, a sequence number per key) into one database's
outbox while a relay process publishes them and a consumer process in another database applies
them. A killer SIGKILLs the relay at random moments (6 times) and the consumer (3 times),
restarting each. At the end: every event applied, none twice, and each key's events applied in
the order they were written.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import uuid
from collections import defaultdict
from pathlib import Path

import asyncpg
import pytest

from slipway_libs import db
from slipway_libs.testing.pipeline import EFFECTS_DDL, counted, wait_until, write_events
from tests.fault.support import ProcessUnderTest

pytestmark = [pytest.mark.fault, pytest.mark.integration]

EVENTS = 10_000
KEYS = 50
PROC = Path(__file__).with_name("pipeline_proc.py")


async def _write_all(pool: asyncpg.Pool, topic: str, rng: random.Random) -> None:
    seq: defaultdict[str, int] = defaultdict(int)
    written = 0
    while written < EVENTS:
        size = min(rng.randint(1, 60), EVENTS - written)
        batch = []
        for _ in range(size):
            key = f"k{rng.randrange(KEYS)}"
            seq[key] += 1
            batch.append(counted(key, seq[key]))
        await write_events(pool, topic, batch)
        written += size
        await asyncio.sleep(rng.uniform(0, 0.03))


async def _kill_repeatedly(
    proc: ProcessUnderTest, times: int, rng: random.Random, pause: tuple[float, float]
) -> None:
    for _ in range(times):
        await asyncio.sleep(rng.uniform(*pause))
        await proc.kill_and_restart(rng.uniform(0.05, 0.5))


async def test_outbox_to_inbox_is_exactly_once_and_ordered_under_sigkill(
    database_factory, devstack, topic_factory
) -> None:
    rng = random.Random(int(os.environ.get("SLIPWAY_FAULT_SEED", random.randrange(1 << 30))))
    producer_dsn = await database_factory("fault_producer")
    consumer_dsn = await database_factory("fault_consumer")
    topic = await topic_factory(partitions=3)
    group = f"fault-{uuid.uuid4().hex[:8]}"
    producer_pool = await db.create_pool(producer_dsn, max_size=3)
    consumer_pool = await db.create_pool(consumer_dsn, max_size=3)
    await consumer_pool.execute(EFFECTS_DDL)
    kafka = devstack.kafka.bootstrap_servers  # the processes authenticate as the admin
    relay = ProcessUnderTest([sys.executable, str(PROC), "relay", producer_dsn, kafka])
    consumer = ProcessUnderTest(
        [sys.executable, str(PROC), "consumer", consumer_dsn, kafka, topic, group]
    )
    try:
        relay.start()
        consumer.start()
        await asyncio.gather(
            _write_all(producer_pool, topic, rng),
            _kill_repeatedly(relay, 6, rng, (0.5, 2.0)),
            _kill_repeatedly(consumer, 3, rng, (1.0, 3.0)),
        )

        async def all_applied() -> bool:
            return await consumer_pool.fetchval("SELECT count(*) FROM effects") >= EVENTS

        await wait_until(all_applied, timeout_s=240, interval_s=0.5)
        await asyncio.sleep(2)  # let any late duplicate show up
        assert relay.kills >= 5 and consumer.kills >= 3
        assert await producer_pool.fetchval("SELECT count(*) FROM outbox") == 0
        await _assert_exactly_once_in_order(consumer_pool)
    finally:
        relay.stop()
        consumer.stop()
        await producer_pool.close()
        await consumer_pool.close()


async def _assert_exactly_once_in_order(pool: asyncpg.Pool) -> None:
    rows = await pool.fetch("SELECT key, seq, event_id FROM effects ORDER BY id")
    assert len(rows) == EVENTS, f"{len(rows) - EVENTS} duplicate effects"
    assert len({r["event_id"] for r in rows}) == EVENTS
    applied: defaultdict[str, list[int]] = defaultdict(list)
    for row in rows:
        applied[row["key"]].append(row["seq"])
    for key, seqs in applied.items():
        assert seqs == list(range(1, len(seqs) + 1)), f"{key} applied out of order"
