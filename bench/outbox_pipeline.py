"""Outbox → OutboxRelay → Kafka → inbox consumer → effects, end to end, with the real libs code.

Two databases (the producer's outbox, the consumer's inbox + effects), one fresh topic; the relay
and the consumer each run in their own process, this process writes and measures.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from pipeline_workers import (
    EFFECTS_DDL,
    ConsumerConfig,
    RelayConfig,
    consumer_main,
    relay_main,
    tick,
)
from support import (
    SPAWN,
    Devstack,
    Latencies,
    Mailbox,
    Pacing,
    paced,
    run_worker,
    throwaway_databases,
    throwaway_topics,
    worker,
)

from slipway_contracts import Envelope, dead_letter_topic
from slipway_libs import db, outbox


@dataclass(frozen=True)
class Params:
    events: int = 50_000  # throughput phase
    keys: int = 100  # aggregate ids (Kafka keys)
    partitions: int = 6
    prefill_batch: int = 1_000  # events per outbox transaction before the relay starts
    rate: int = 1_000  # events/s in the latency phases
    per_tick: int = 10  # events per transaction (pipeline) or per burst (raw) at that rate
    duration_s: float = 15.0
    warmup_s: float = 2.0  # latency samples of the first seconds are discarded
    relay_batch: int = 500
    consumer_batch: int = 500
    timeout_s: float = 240.0  # per phase: a stuck pipeline fails the run instead of hanging

    @property
    def tick_s(self) -> float:
        return self.per_tick / self.rate

    @property
    def ticks(self) -> int:
        return int(self.duration_s * self.rate) // self.per_tick

    def key(self, seq: int) -> str:
        return f"agg-{seq % self.keys}"


@dataclass(frozen=True)
class PipelineResult:
    throughput: float  # events/s, relay start → last effect
    relay_rate: float  # events/s, relay start → last row acknowledged by Kafka
    apply_rate: float  # events/s, first effect → last effect
    prefill_rate: float  # events/s written into the outbox (1,000 per transaction)
    latency: Latencies
    pacing: Pacing
    payload_bytes: int
    postgres_version: str


async def run(devstack: Devstack, params: Params) -> PipelineResult:
    async with (throwaway_databases(devstack, "outbox", "effects") as dsns,
                throwaway_topics(devstack.kafka) as topics):
        topic = await topics.create(params.partitions, "pipeline")
        group = f"bench-{uuid.uuid4().hex[:10]}"
        topics.delete_later(dead_letter_topic(group))  # created by consuming()
        outbox_pool = await db.create_pool(dsns["outbox"], min_size=1, max_size=2)
        effects_pool = await db.create_pool(dsns["effects"], min_size=1, max_size=2)
        try:
            await effects_pool.execute(EFFECTS_DDL)
            configs = (RelayConfig(dsns["outbox"], devstack.kafka, params.relay_batch,
                                   params.events),
                       ConsumerConfig(dsns["effects"], devstack.kafka, topic, group,
                                      params.consumer_batch))
            return await _measure(devstack, params, topic, configs, (outbox_pool, effects_pool))
        finally:
            await outbox_pool.close()
            await effects_pool.close()


async def _measure(devstack: Devstack, params: Params, topic: str,
                   configs: tuple[RelayConfig, ConsumerConfig],
                   pools: tuple[asyncpg.Pool, asyncpg.Pool]) -> PipelineResult:
    outbox_pool, effects_pool = pools
    mailbox, go, stop = Mailbox(), SPAWN.Event(), SPAWN.Event()
    with (worker(run_worker, consumer_main, mailbox.queue, configs[1], stop),
          worker(run_worker, relay_main, mailbox.queue, configs[0], go, stop)):
        await mailbox.wait("consumer_started", 60)
        await mailbox.wait("relay_ready", 60)
        await _warm_up_consumer(devstack.kafka, topic, params, effects_pool, mailbox)
        prefill_rate = await _prefill(outbox_pool, topic, params)
        go.set()
        started = await mailbox.wait("relay_started", 30)
        await _wait_for_effects(effects_pool, "throughput", params.events, mailbox, params)
        drained = await mailbox.wait("relay_drained", 30)
        first, last = await effects_pool.fetchrow(
            "SELECT extract(epoch FROM min(applied_at))::float8,"
            " extract(epoch FROM max(applied_at))::float8 FROM effects WHERE phase = $1",
            "throughput")
        latency, pacing = await _latency_phase(outbox_pool, effects_pool, topic, params, mailbox)
    return PipelineResult(
        throughput=params.events / (last - started),
        relay_rate=params.events / (drained - started),
        apply_rate=params.events / (last - first),
        prefill_rate=prefill_rate,
        latency=latency,
        pacing=pacing,
        payload_bytes=len(tick("throughput", 0, params.key(0)).to_json()),
        postgres_version=await effects_pool.fetchval("SELECT version()"),
    )


async def _warm_up_consumer(kafka: str, topic: str, params: Params, pool: asyncpg.Pool,
                            mailbox: Mailbox) -> None:
    """One event straight onto every partition: once all are applied, the consumer group has
    its partitions and the throughput clock does not include the group join."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka, client_id="bench-warmup")
    await producer.start()
    try:
        for partition in range(params.partitions):
            env = tick("warmup", partition, params.key(partition))
            await producer.send_and_wait(topic, env.to_json(), key=env.subject.encode(),
                                         partition=partition)
    finally:
        await producer.stop()
    await _wait_for_effects(pool, "warmup", params.partitions, mailbox, params)


async def _prefill(pool: asyncpg.Pool, topic: str, params: Params) -> float:
    started = time.monotonic()
    for first in range(0, params.events, params.prefill_batch):
        last = min(params.events, first + params.prefill_batch)
        await _append(pool, topic, [tick("throughput", s, params.key(s)) for s in range(first, last)])
    return params.events / (time.monotonic() - started)


async def _append(pool: asyncpg.Pool, topic: str, envelopes: Sequence[Envelope]) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await outbox.append(conn, [(topic, env) for env in envelopes])


async def _wait_for_effects(pool: asyncpg.Pool, phase: str, count: int, mailbox: Mailbox,
                            params: Params) -> None:
    deadline = time.monotonic() + params.timeout_s
    done = 0
    while time.monotonic() < deadline:
        mailbox.check()
        done = await pool.fetchval("SELECT count(*) FROM effects WHERE phase = $1", phase)
        if done >= count:
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"{phase}: only {done} of {count} effects after {params.timeout_s:.0f}s")


async def _latency_phase(outbox_pool: asyncpg.Pool, effects_pool: asyncpg.Pool, topic: str,
                         params: Params, mailbox: Mailbox) -> tuple[Latencies, Pacing]:
    """``params.rate`` events/s in transactions of ``params.per_tick``, while the relay and the
    consumer run; latency = the effect's ``applied_at`` − the event's ``occurred_at``."""

    async def send(i: int) -> None:
        first = i * params.per_tick
        await _append(outbox_pool, topic, [tick("latency", s, params.key(s))
                                           for s in range(first, first + params.per_tick)])

    began = datetime.now(UTC)
    pacing = await paced(params.ticks, params.tick_s, params.per_tick, send)
    await _wait_for_effects(effects_pool, "latency", params.ticks * params.per_tick, mailbox,
                            params)
    rows: list[Any] = await effects_pool.fetch(
        "SELECT (extract(epoch FROM applied_at - occurred_at) * 1000)::float8 AS ms"
        " FROM effects WHERE phase = 'latency' AND occurred_at >= $1",
        began + timedelta(seconds=params.warmup_s))
    return Latencies.of([r["ms"] for r in rows]), pacing
