"""The outbox pipeline's worker processes: the real ``OutboxRelay`` and the real inbox consumer
(``slipway_libs.bus.consuming``), each in its own process, started by ``outbox_pipeline``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer
from support import Flag, record_calls, wait_flag

from slipway_contracts import Envelope, EventPayload, new_event
from slipway_libs import db
from slipway_libs.bus import ConsumerSpec, consuming
from slipway_libs.inbox import InboxConsumer, batch
from slipway_libs.relay import OutboxRelay, producer_factory
from slipway_libs.settings import KafkaConnection

EFFECTS_DDL = """
CREATE TABLE effects (
    id          bigserial   PRIMARY KEY,
    event_id    uuid        NOT NULL,
    phase       text        NOT NULL,
    key         text        NOT NULL,
    seq         integer     NOT NULL,
    occurred_at timestamptz NOT NULL,
    applied_at  timestamptz NOT NULL
)
"""

_INSERT_EFFECT = """
INSERT INTO effects (event_id, phase, key, seq, occurred_at, applied_at)
VALUES ($1, $2, $3, $4, $5, clock_timestamp())
"""


class BenchTick(EventPayload):
    """The benchmark's event; ``occurred_at`` of its envelope is the latency's start."""

    event_type = "bench.Tick"
    topic = "bench.ticks.v1"  # unused: every run publishes to its own fresh topic

    phase: str
    seq: int


def tick(phase: str, seq: int, key: str) -> Envelope:
    return new_event(BenchTick(phase=phase, seq=seq), subject=key, source="bench")


_INSERT_EFFECTS = """
INSERT INTO effects (event_id, phase, key, seq, occurred_at, applied_at)
SELECT id, phase, key, seq, occurred_at, clock_timestamp()
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int[], $5::timestamptz[])
    AS e(id, phase, key, seq, occurred_at)
"""


async def record_effects(conn: asyncpg.Connection, envelopes: list[Envelope]) -> None:
    """The batch handler: one statement for every consecutive event of the batch."""
    await conn.execute(
        _INSERT_EFFECTS,
        [e.id for e in envelopes],
        [e.data["phase"] for e in envelopes],
        [e.subject for e in envelopes],
        [e.data["seq"] for e in envelopes],
        [e.occurred_at for e in envelopes],
    )


async def record_effect(conn: asyncpg.Connection, envelope: Envelope) -> None:
    """The handler: one effect row per event, stamped with the database's clock at apply time."""
    await conn.execute(
        _INSERT_EFFECT,
        envelope.id,
        envelope.data["phase"],
        envelope.subject,
        envelope.data["seq"],
        envelope.occurred_at,
    )


@dataclass(frozen=True)
class RelayConfig:
    dsn: str
    kafka: KafkaConnection
    batch_size: int
    events: int  # report when this many rows are published (the throughput phase)


@dataclass(frozen=True)
class ConsumerConfig:
    dsn: str
    kafka: KafkaConnection
    topic: str
    group_id: str
    batch_size: int
    batch_handler: bool = True  # one statement per run of events; False: one per event


async def relay_main(mailbox: Any, cfg: RelayConfig, go: Flag, stop: Flag) -> None:
    """Wait for ``go``, then relay; report the start time, when ``cfg.events`` were sent, and at
    ``stop`` every batch the relay published."""
    batches = record_calls(OutboxRelay, "_publish_batch", lambda _, sent: int(sent))
    relay = OutboxRelay(
        dsn=cfg.dsn,
        batch_size=cfg.batch_size,
        producer=producer_factory(cfg.kafka, client_id="bench-relay"),
    )
    gc.freeze()  # as a service does after start-up (slipway_libs.service)
    mailbox.put(("relay_ready", None))
    if not await wait_flag(go, stop):
        return
    started = time.time()
    task = asyncio.create_task(relay.run())
    mailbox.put(("relay_started", started))
    watcher = asyncio.create_task(_report_published(mailbox, relay, cfg.events))
    try:
        await wait_flag(stop, stop)
        mailbox.put(("relay_batches", batches))
    finally:
        for running in (watcher, task):
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running


async def _report_published(mailbox: Any, relay: OutboxRelay, events: int) -> None:
    while relay.published < events:  # noqa: ASYNC110 - the relay offers a counter, no event
        await asyncio.sleep(0.005)
    mailbox.put(("relay_drained", time.time()))


async def consumer_main(mailbox: Any, cfg: ConsumerConfig, stop: Flag) -> None:
    """The inbox consumer of the effects database until ``stop``, then its batches."""
    batches = record_calls(InboxConsumer, "apply", lambda args, _: len(args[1]))
    commits = record_calls(AIOKafkaConsumer, "commit", lambda *_: 1)  # in the background
    pool = await db.create_pool(cfg.dsn, max_size=2)
    spec = ConsumerSpec(
        group_id=cfg.group_id,
        topics=[cfg.topic],
        handlers={
            BenchTick.event_type: batch(record_effects) if cfg.batch_handler else record_effect
        },
    )
    gc.freeze()  # as a service does after start-up (slipway_libs.service)
    try:
        async with consuming(
            cfg.kafka, pool, [spec], client_id="bench-consumer", batch_size=cfg.batch_size
        ):
            mailbox.put(("consumer_started", None))
            await wait_flag(stop, stop)
            mailbox.put(("consumer_batches", batches))
            mailbox.put(("consumer_commits", commits))
    finally:
        await pool.close()
