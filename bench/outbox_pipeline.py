"""Outbox → OutboxRelay → Kafka → inbox consumer → effects, end to end, with the real libs code.

Two databases (the producer's outbox, the consumer's inbox + effects), one fresh topic; the relay
and the consumer each run in their own process, this process writes and measures.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

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
    Batches,
    Call,
    Devstack,
    Flag,
    Latencies,
    Mailbox,
    Pacing,
    cores_used,
    cpu_snapshot,
    paced,
    record_timestamps,
    throwaway_databases,
    throwaway_topics,
)

from slipway_contracts import Envelope, dead_letter_topic
from slipway_libs import db, outbox
from slipway_libs.settings import KafkaConnection


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
    batch_handler: bool = True  # the effect handler writes a whole run at once
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
    to_kafka: Latencies  # the same events: occurred_at → the relay's send (record timestamp)
    from_kafka: Latencies  # the same events: the relay's send → applied_at
    pacing: Pacing
    relay_batches: tuple[Batches, Batches]  # OutboxRelay._publish_batch: (throughput, latency)
    consumer_batches: tuple[Batches, Batches]  # InboxConsumer.apply: (throughput, latency)
    consumer_commits: tuple[Batches, Batches]  # AIOKafkaConsumer.commit (bus.OffsetCommits)
    cores: tuple[dict[str, float], dict[str, float]]  # CPU used per process group, per run
    payload_bytes: int
    postgres_version: str


# (topic, consumer group) -> the relay's and the consumer's connections, for the block
Principals = Callable[
    [str, str], AbstractAsyncContextManager[tuple[KafkaConnection, KafkaConnection]]
]


@contextlib.asynccontextmanager
async def _as_admin(
    kafka: KafkaConnection,
) -> AsyncIterator[tuple[KafkaConnection, KafkaConnection]]:
    yield kafka, kafka


async def run(
    devstack: Devstack, params: Params, principals: Principals | None = None
) -> PipelineResult:
    """The benchmark on ``devstack.kafka``'s broker; the relay and the consumer connect as
    ``devstack.kafka`` (the admin principal) unless ``principals`` gives them their own."""
    async with (
        throwaway_databases(devstack, "outbox", "effects") as dsns,
        throwaway_topics(devstack.kafka) as topics,
    ):
        topic = await topics.create(params.partitions, "pipeline")
        group = f"bench-{uuid.uuid4().hex[:10]}"
        topics.delete_later(dead_letter_topic(group))  # created by consuming()
        connect = principals or (lambda _topic, _group: _as_admin(devstack.kafka))
        async with connect(topic, group) as (relay_kafka, consumer_kafka):
            return await _run(devstack, params, dsns, topic, group, relay_kafka, consumer_kafka)


async def _run(
    devstack: Devstack,
    params: Params,
    dsns: dict[str, str],
    topic: str,
    group: str,
    relay_kafka: KafkaConnection,
    consumer_kafka: KafkaConnection,
) -> PipelineResult:
    bench = _Bench(
        devstack,
        devstack.kafka,
        topic,
        params,
        Mailbox(),
        await db.create_pool(dsns["outbox"], min_size=1, max_size=2),
        await db.create_pool(dsns["effects"], min_size=1, max_size=2),
    )
    try:
        await bench.effects.execute(EFFECTS_DDL)
        return await _measure(
            bench,
            RelayConfig(dsns["outbox"], relay_kafka, params.relay_batch, params.events),
            ConsumerConfig(
                dsns["effects"],
                consumer_kafka,
                topic,
                group,
                params.consumer_batch,
                params.batch_handler,
            ),
        )
    finally:
        await bench.outbox.close()
        await bench.effects.close()


@dataclass(frozen=True)
class _Bench:
    devstack: Devstack
    kafka: KafkaConnection
    topic: str
    params: Params
    mailbox: Mailbox
    outbox: asyncpg.Pool  # the producing service's database
    effects: asyncpg.Pool  # the consuming service's database (inbox + effects)


async def _measure(bench: _Bench, relay: RelayConfig, consumer: ConsumerConfig) -> PipelineResult:
    go, stop = Flag(), Flag()
    with (
        bench.mailbox.worker(consumer_main, consumer, stop) as consumer_process,
        bench.mailbox.worker(relay_main, relay, go, stop) as relay_process,
    ):
        pids = {"relay": relay_process.pid or 0, "consumer": consumer_process.pid or 0}
        await bench.mailbox.wait("consumer_started", 60)
        await bench.mailbox.wait("relay_ready", 60)
        await _warm_up_consumer(bench)
        prefill_rate = await _prefill(bench)
        cpu = [cpu_snapshot(pids, bench.devstack)]
        go.set()
        run = await _throughput_phase(bench)
        cpu.append(cpu_snapshot(pids, bench.devstack))
        await _settle(bench)
        cpu.append(cpu_snapshot(pids, bench.devstack))
        pacing, warm_until = await _write_paced(bench)
        cpu.append(cpu_snapshot(pids, bench.devstack))
        latency_window = (warm_until.timestamp(), time.time())
        latency, to_kafka, from_kafka = await _latencies(bench, warm_until)
        stop.set()
        relayed = await bench.mailbox.wait("relay_batches", 30)
        applied = await bench.mailbox.wait("consumer_batches", 30)
        commits = await bench.mailbox.wait("consumer_commits", 30)
    events = bench.params.events
    return PipelineResult(
        throughput=events / (run.last_effect - run.relay_started),
        relay_rate=events / (run.relay_drained - run.relay_started),
        apply_rate=events / (run.last_effect - run.first_effect),
        prefill_rate=prefill_rate,
        latency=latency,
        to_kafka=to_kafka,
        from_kafka=from_kafka,
        pacing=pacing,
        relay_batches=_windows(relayed, run, latency_window),
        consumer_batches=_windows(applied, run, latency_window),
        consumer_commits=_windows(commits, run, latency_window),
        cores=(cores_used(cpu[0], cpu[1]), cores_used(cpu[2], cpu[3])),
        payload_bytes=len(tick("throughput", 0, bench.params.key(0)).to_json()),
        postgres_version=await bench.effects.fetchval("SHOW server_version"),
    )


def _windows(
    calls: list[Call], run: _ThroughputRun, latency_window: tuple[float, float]
) -> tuple[Batches, Batches]:
    """A worker's calls split into (throughput run, latency run after its warm-up)."""
    return (
        Batches.within(calls, run.relay_started, run.last_effect),
        Batches.within(calls, *latency_window),
    )


async def _warm_up_consumer(bench: _Bench) -> None:
    """One event straight onto every partition: once all are applied, the consumer group has
    its partitions and the throughput clock does not include the group join."""
    producer = AIOKafkaProducer(**bench.kafka.options(), client_id="bench-warmup")
    await producer.start()
    try:
        for partition in range(bench.params.partitions):
            env = tick("warmup", partition, bench.params.key(partition))
            await producer.send_and_wait(
                bench.topic, env.to_json(), key=env.subject.encode(), partition=partition
            )
    finally:
        await producer.stop()
    await _wait_for_effects(bench, "warmup", bench.params.partitions)


async def _prefill(bench: _Bench) -> float:
    """Write the throughput phase's events into the outbox (the relay is not running yet)."""
    events, batch = bench.params.events, bench.params.prefill_batch
    started = time.monotonic()
    for first in range(0, events, batch):
        await _append(
            bench,
            [
                tick("throughput", s, bench.params.key(s))
                for s in range(first, min(events, first + batch))
            ],
        )
    return events / (time.monotonic() - started)


async def _append(bench: _Bench, envelopes: Sequence[Envelope]) -> None:
    async with bench.outbox.acquire() as conn, conn.transaction():
        await outbox.append(conn, [(bench.topic, env) for env in envelopes])


@dataclass(frozen=True)
class _ThroughputRun:
    """Wall-clock instants of the throughput phase (seconds since the epoch)."""

    relay_started: float
    relay_drained: float  # every row acknowledged by Kafka
    first_effect: float
    last_effect: float


async def _throughput_phase(bench: _Bench) -> _ThroughputRun:
    """Wait for the relay (already told to go) and the consumer to get through every event."""
    started = await bench.mailbox.wait("relay_started", 30)
    await _wait_for_effects(bench, "throughput", bench.params.events)
    drained = await bench.mailbox.wait("relay_drained", 30)
    first, last = await bench.effects.fetchrow(
        "SELECT extract(epoch FROM min(applied_at))::float8,"
        " extract(epoch FROM max(applied_at))::float8 FROM effects WHERE phase = 'throughput'"
    )
    return _ThroughputRun(started, drained, first, last)


async def _settle(bench: _Bench) -> None:
    """Between the runs: vacuum what the throughput run left (50,000 dead outbox rows, fresh
    inbox and effects rows) and checkpoint, so that the latency run measures the pipeline and
    not autovacuum and a checkpoint catching up with the previous run."""
    await bench.outbox.execute("VACUUM ANALYZE outbox")
    await bench.effects.execute("VACUUM ANALYZE inbox, effects")
    await bench.effects.execute("CHECKPOINT")


async def _wait_for_effects(bench: _Bench, phase: str, count: int) -> None:
    deadline = time.monotonic() + bench.params.timeout_s
    done = 0
    while time.monotonic() < deadline:
        bench.mailbox.check()
        done = await bench.effects.fetchval("SELECT count(*) FROM effects WHERE phase = $1", phase)
        if done >= count:
            return
        await asyncio.sleep(0.5)  # the end time comes from applied_at, not from here
    raise TimeoutError(f"{phase}: {done} of {count} effects after {bench.params.timeout_s:.0f}s")


async def _write_paced(bench: _Bench) -> tuple[Pacing, datetime]:
    """``rate`` events/s in transactions of ``per_tick`` events, while the relay and the consumer
    run; returns when every event is applied, with the end of the warm-up (wall clock)."""
    params = bench.params

    async def send(i: int) -> None:
        first = i * params.per_tick
        await _append(
            bench,
            [tick("latency", s, params.key(s)) for s in range(first, first + params.per_tick)],
        )

    warm_until = datetime.now(UTC) + timedelta(seconds=params.warmup_s)
    pacing = await paced(params.ticks, params.tick_s, params.per_tick, send)
    await _wait_for_effects(bench, "latency", params.ticks * params.per_tick)
    return pacing, warm_until


async def _latencies(bench: _Bench, warm_until: datetime) -> tuple[Latencies, Latencies, Latencies]:
    """applied_at minus occurred_at per event after the warm-up, then the same cut in two at the
    relay's send (the Kafka record's timestamp, in ms): before Kafka, and after."""
    rows = await bench.effects.fetch(
        "SELECT event_id, extract(epoch FROM occurred_at)::float8 * 1000 AS occurred,"
        " extract(epoch FROM applied_at)::float8 * 1000 AS applied FROM effects"
        " WHERE phase = 'latency' AND occurred_at >= $1",
        warm_until,
    )
    stamps = await record_timestamps(bench.kafka, bench.topic, bench.params.partitions)
    sent = [float(stamps[str(r["event_id"])]) for r in rows]
    return (
        Latencies.of([r["applied"] - r["occurred"] for r in rows]),
        Latencies.of([s - r["occurred"] for s, r in zip(sent, rows, strict=True)]),
        Latencies.of([r["applied"] - s for s, r in zip(sent, rows, strict=True)]),
    )
