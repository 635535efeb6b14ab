"""10,000 events or more through the outbox, applied exactly once while relay and consumer are
SIGKILLed.

The writer commits events (keys ``k0..k49``, a sequence number per key) into one database's
outbox while a relay process publishes them and a consumer process in another database applies
them. A killer SIGKILLs the relay at random moments until 6 kills found outbox rows it had not
relayed, and the consumer until 3 kills found relayed events it had not applied (both checked in
the databases once the process is dead), restarting each; the writer goes on until the killers
are done. At the end: every event applied, none twice, and each key's events applied in the
order they were written.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import asyncpg
import pytest

from slipway_libs import db
from slipway_libs.testing.pipeline import EFFECTS_DDL, counted, wait_until, write_events
from tests.fault.support import ProcessUnderTest

pytestmark = [pytest.mark.fault, pytest.mark.integration]

EVENTS = 10_000
KEYS = 50
PROC = Path(__file__).with_name("pipeline_proc.py")
T = TypeVar("T")


@dataclass
class _Writer:
    """Commits events (a sequence number per key) until told to stop, at least ``EVENTS``."""

    written: int = 0  # committed: counted only once its transaction returned
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, pool: asyncpg.Pool, topic: str, rng: random.Random) -> None:
        seq: defaultdict[str, int] = defaultdict(int)
        while self.written < EVENTS or not self.stop.is_set():
            batch = []
            for _ in range(rng.randint(1, 60)):
                key = f"k{rng.randrange(KEYS)}"
                seq[key] += 1
                batch.append(counted(key, seq[key]))
            await write_events(pool, topic, batch)
            self.written += len(batch)
            await asyncio.sleep(rng.uniform(0, 0.03))


# Waits until the process has work, then returns a check that, run once the process is dead,
# says whether that work was still unfinished when it died.
Pending = Callable[[], Awaitable[Callable[[], Awaitable[bool]]]]


async def _kill_into_work(
    proc: ProcessUnderTest,
    times: int,
    rng: random.Random,
    pause: tuple[float, float],
    pending: Pending,
) -> None:
    """SIGKILL ``proc`` at random moments until ``times`` kills hit work it had not finished (a
    kill that found it idle proves nothing, so it does not count), restarting it each time."""
    hits = misses = 0
    while hits < times:
        await asyncio.sleep(rng.uniform(*pause))
        unfinished = await pending()
        proc.kill()
        if await unfinished():
            hits += 1
        else:
            misses += 1
            assert misses <= 3 * times, f"{proc.argv[2]}: the kills keep missing its work"
        await asyncio.sleep(rng.uniform(0.05, 0.5))
        proc.start()


async def _some(read: Callable[[], Awaitable[T | None]], what: str) -> T:
    deadline = time.monotonic() + 60
    while (value := await read()) is None:
        assert time.monotonic() < deadline, f"no {what} for 60 s"
        await asyncio.sleep(0.005)
    return value


def _unrelayed(producer: asyncpg.Pool) -> Pending:
    """Outbox rows there before the kill and still there after it: the relay died with them."""

    async def pending() -> Callable[[], Awaitable[bool]]:
        ids = await _some(lambda: producer.fetchval("SELECT array_agg(id) FROM outbox"), "rows")

        async def unfinished() -> bool:
            query = "SELECT EXISTS (SELECT 1 FROM outbox WHERE id = ANY($1))"
            return bool(await producer.fetchval(query, ids))

        return unfinished

    return pending


def _unapplied(writer: _Writer, producer: asyncpg.Pool, consumer: asyncpg.Pool) -> Pending:
    """Fewer effects after the kill than events relayed before it: the consumer died with
    events it had read or could read and had not applied. Relayed is counted low (the written
    count is read first, rows still in the outbox after), so a hit is never imagined."""

    async def relayed_not_applied() -> int | None:
        written = writer.written
        relayed = written - await producer.fetchval("SELECT count(*) FROM outbox")
        applied = await consumer.fetchval("SELECT count(*) FROM effects")
        return relayed if relayed > applied else None

    async def pending() -> Callable[[], Awaitable[bool]]:
        relayed = await _some(relayed_not_applied, "events relayed and not applied")

        async def unfinished() -> bool:
            return bool(await consumer.fetchval("SELECT count(*) FROM effects") < relayed)

        return unfinished

    return pending


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
    writer = _Writer()

    async def kill_both() -> None:
        try:
            await asyncio.gather(
                _kill_into_work(relay, 6, rng, (0.5, 2.0), _unrelayed(producer_pool)),
                _kill_into_work(
                    consumer, 3, rng, (1.0, 3.0), _unapplied(writer, producer_pool, consumer_pool)
                ),
            )
        finally:
            writer.stop.set()

    try:
        relay.start()
        consumer.start()
        await asyncio.gather(writer.run(producer_pool, topic, rng), kill_both())

        async def all_applied() -> bool:
            return await consumer_pool.fetchval("SELECT count(*) FROM effects") >= writer.written

        await wait_until(all_applied, timeout_s=240, interval_s=0.5)
        await asyncio.sleep(2)  # let any late duplicate show up
        assert await producer_pool.fetchval("SELECT count(*) FROM outbox") == 0
        await _assert_exactly_once_in_order(consumer_pool, writer.written)
    finally:
        relay.stop()
        consumer.stop()
        await producer_pool.close()
        await consumer_pool.close()


async def _assert_exactly_once_in_order(pool: asyncpg.Pool, written: int) -> None:
    rows = await pool.fetch("SELECT key, seq, event_id FROM effects ORDER BY id")
    assert len(rows) == written, f"{len(rows) - written} duplicate effects"
    assert len({r["event_id"] for r in rows}) == written
    applied: defaultdict[str, list[int]] = defaultdict(list)
    for row in rows:
        applied[row["key"]].append(row["seq"])
    for key, seqs in applied.items():
        assert seqs == list(range(1, len(seqs) + 1)), f"{key} applied out of order"
