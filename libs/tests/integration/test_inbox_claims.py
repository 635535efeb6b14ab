"""The inbox's claim on the real PostgreSQL: a batch of events never seen goes in with a plain
insert; a batch holding one seen before (a redelivery) or the same event twice is applied again
with the claim that skips those, each event once and in the batch's order."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import asyncpg
import pytest

from slipway_contracts import Envelope
from slipway_libs import db
from slipway_libs.inbox import InboxConsumer, Record, batch
from slipway_libs.testing.pipeline import EFFECTS_DDL, counted

pytestmark = pytest.mark.integration


@dataclass
class Rec:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)


def records(envelopes: list[Envelope], first_offset: int = 0) -> list[Record]:
    return [
        Rec("t", 0, first_offset + i, e.subject.encode(), e.to_json())
        for i, e in enumerate(envelopes)
    ]


class NoDeadLetters:
    async def send(self, record: Record, *, group_id: str, reason: str) -> None:
        raise AssertionError(f"nothing here is to be dead-lettered, yet: {reason}")


@pytest.fixture
async def pool(database_factory) -> asyncpg.Pool:
    pool = await db.create_pool(await database_factory("inbox"), max_size=2)
    async with pool.acquire() as conn:
        await conn.execute(EFFECTS_DDL)
    yield pool
    await pool.close()


def consumer_of(pool: asyncpg.Pool, calls: list[list[int]]) -> InboxConsumer:
    async def insert_all(conn: asyncpg.Connection, envelopes: list[Envelope]) -> None:
        calls.append([e.data["seq"] for e in envelopes])
        await conn.execute(
            "INSERT INTO effects (key, seq, event_id)"
            " SELECT * FROM unnest($1::text[], $2::int[], $3::uuid[])",
            [e.data["key"] for e in envelopes],
            [e.data["seq"] for e in envelopes],
            [e.id for e in envelopes],
        )

    return InboxConsumer(
        group_id=f"g-{uuid.uuid4().hex[:8]}",
        pool=pool,
        handlers={"test.Counted": batch(insert_all)},
        dead_letters=NoDeadLetters(),
    )


async def effects(pool: asyncpg.Pool) -> list[int]:
    return [r["seq"] for r in await pool.fetch("SELECT seq FROM effects ORDER BY id")]


async def test_a_batch_never_seen_is_applied_in_one_run(pool) -> None:
    calls: list[list[int]] = []
    consumer = consumer_of(pool, calls)
    await consumer.process(records([counted("k", i) for i in range(5)]))
    assert calls == [[0, 1, 2, 3, 4]]
    assert await effects(pool) == [0, 1, 2, 3, 4]
    assert consumer.applied == 5


async def test_a_batch_mixing_redelivered_and_new_events_applies_the_new_ones_once(pool) -> None:
    calls: list[list[int]] = []
    consumer = consumer_of(pool, calls)
    envs = [counted("k", i) for i in range(6)]
    await consumer.process(records(envs[:3]))
    # 1 and 2 again (a relay that crashed after sending), the new 3 twice in the batch, then 4
    # and 5: the plain insert fails on 1, the batch is applied again skipping what was seen
    again = [envs[1], envs[3], envs[2], envs[3], envs[4], envs[5]]
    await consumer.process(records(again, first_offset=3))
    assert calls == [[0, 1, 2], [3, 4, 5]]
    assert await effects(pool) == [0, 1, 2, 3, 4, 5]
    assert consumer.applied == 6
    inbox = "SELECT count(*) FROM inbox WHERE consumer_group = $1 AND outcome = 'applied'"
    assert await pool.fetchval(inbox, consumer.group_id) == 6


async def test_the_same_event_twice_in_a_fresh_batch_is_applied_once(pool) -> None:
    calls: list[list[int]] = []
    consumer = consumer_of(pool, calls)
    twice = counted("k", 7)
    await consumer.process(records([twice, counted("k", 8), twice]))
    assert calls == [[7, 8]]
    assert consumer.applied == 2


async def test_a_batch_seen_entirely_before_applies_nothing(pool) -> None:
    calls: list[list[int]] = []
    consumer = consumer_of(pool, calls)
    envs = [counted("k", i) for i in range(4)]
    await consumer.process(records(envs))
    await consumer.process(records(envs, first_offset=4))
    assert calls == [[0, 1, 2, 3]]
    assert await effects(pool) == [0, 1, 2, 3]
    assert consumer.applied == 4


async def test_a_handlers_unique_violation_is_its_failure_not_a_redelivery(pool) -> None:
    """Only the inbox's own insert means "seen before": a handler's duplicate key is retried
    and dead-lettered like any handler error, never skipped as applied."""
    await pool.execute("CREATE TABLE once (key text PRIMARY KEY)")
    dead: list[str] = []

    class DeadLetters:
        async def send(self, record: Record, *, group_id: str, reason: str) -> None:
            dead.append(reason)

    async def insert_key(conn: asyncpg.Connection, envelopes: list[Envelope]) -> None:
        for envelope in envelopes:
            await conn.execute("INSERT INTO once VALUES ($1)", envelope.data["key"])

    consumer = InboxConsumer(
        group_id=f"g-{uuid.uuid4().hex[:8]}",
        pool=pool,
        handlers={"test.Counted": batch(insert_key)},
        dead_letters=DeadLetters(),
        max_retries=1,
        backoff_s=0.01,
    )
    await consumer.process(records([counted("a", 1), counted("a", 2), counted("b", 3)]))
    assert sorted(r["key"] for r in await pool.fetch("SELECT key FROM once")) == ["a", "b"]
    assert consumer.applied == 2
    assert consumer.dead_lettered == 1
    assert "UniqueViolationError" in dead[0]
