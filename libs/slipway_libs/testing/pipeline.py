"""Helpers for tests and benchmarks of the outbox → relay → Kafka → inbox pipeline."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord

from slipway_contracts import Envelope, EventPayload, new_event
from slipway_libs import outbox
from slipway_libs.bus import ConsumerSpec, consuming
from slipway_libs.inbox import Handler, InboxConsumer
from slipway_libs.relay import OutboxRelay, producer_factory
from slipway_libs.settings import KafkaConnection

EFFECTS_DDL = """
CREATE TABLE IF NOT EXISTS effects (
    id        bigserial PRIMARY KEY,
    key       text   NOT NULL,
    seq       integer NOT NULL,
    event_id  uuid   NOT NULL
)
"""


class Counted(EventPayload):
    event_type = "test.Counted"
    topic = "set-per-test"

    key: str
    seq: int


def counted(key: str, seq: int) -> Envelope:
    return new_event(Counted(key=key, seq=seq), subject=key, source="test")


async def write_events(pool: asyncpg.Pool, topic: str, envelopes: Sequence[Envelope]) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await outbox.append(conn, [(topic, e) for e in envelopes])


async def record_effect(conn: asyncpg.Connection, envelope: Envelope) -> None:
    await conn.execute(
        "INSERT INTO effects (key, seq, event_id) VALUES ($1, $2, $3)",
        envelope.data["key"],
        envelope.data["seq"],
        envelope.id,
    )


@contextlib.asynccontextmanager
async def running_relay(
    dsn: str, kafka: KafkaConnection, **kwargs: Any
) -> AsyncIterator[OutboxRelay]:
    relay = OutboxRelay(
        dsn=dsn,
        producer=producer_factory(kafka, client_id="test-relay"),
        poll_interval_s=0.2,
        **kwargs,
    )
    task = asyncio.create_task(relay.run())
    try:
        yield relay
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def running_consumer(
    pool: asyncpg.Pool,
    kafka: KafkaConnection,
    topic: str,
    group_id: str,
    handlers: dict[str, Handler],
    **kwargs: Any,
) -> AsyncIterator[InboxConsumer]:
    spec = ConsumerSpec(group_id=group_id, topics=[topic], handlers=handlers)
    async with consuming(kafka, pool, [spec], client_id="test-consumer", **kwargs) as consumers:
        yield consumers[0]


async def read_topic(
    kafka: KafkaConnection, topic: str, count: int, timeout_s: float = 30
) -> list[ConsumerRecord[bytes, bytes]]:
    consumer = AIOKafkaConsumer(
        topic,
        **kafka.options(),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    got: list[ConsumerRecord[bytes, bytes]] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(got) < count and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                got.extend(records)
        return got
    finally:
        await consumer.stop()


async def wait_until(
    predicate: Callable[[], Awaitable[bool]], timeout_s: float = 30, interval_s: float = 0.1
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(interval_s)
    raise AssertionError(f"condition not met within {timeout_s}s")
