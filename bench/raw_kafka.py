"""The ceiling: the same messages through bare aiokafka on the same broker, no database at all.

The producer has the relay's exact settings (``slipway_libs.relay.producer_factory``: idempotent,
acks=all, linger 2 ms) and runs in this process; a plain ``AIOKafkaConsumer`` (no group, every
partition assigned, the inbox consumer's batch size and poll timeout) runs in its own process.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from outbox_pipeline import Params
from support import (
    Devstack,
    Flag,
    Latencies,
    Mailbox,
    Pacing,
    paced,
    throwaway_topics,
)

from slipway_libs.relay import producer_factory
from slipway_libs.settings import KafkaConnection

HEADERS = [("event_type", b"bench.Tick")]  # what the relay adds to every record


@dataclass(frozen=True)
class RawResult:
    throughput: float  # msgs/s, first send → last message received
    acked_rate: float  # msgs/s, first send → every send acknowledged
    latency: Latencies
    pacing: Pacing


@dataclass(frozen=True)
class RawConsumerConfig:
    kafka: KafkaConnection
    topic: str
    partitions: int
    batch_size: int
    expected: dict[str, int]  # phase → how many messages make it complete


def message(phase: str, seq: int, size: int) -> bytes:
    """A JSON message of about ``size`` bytes carrying its send time (wall clock)."""
    body = {"phase": phase, "seq": seq, "sent": time.time(), "pad": ""}
    body["pad"] = "x" * max(0, size - len(json.dumps(body)))
    return json.dumps(body).encode()


async def run(devstack: Devstack, params: Params, payload_bytes: int) -> RawResult:
    async with throwaway_topics(devstack.kafka) as topics:
        topic = await topics.create(params.partitions, "raw")
        cfg = RawConsumerConfig(
            devstack.kafka,
            topic,
            params.partitions,
            params.consumer_batch,
            {
                "warmup": params.partitions,
                "throughput": params.events,
                "latency": params.ticks * params.per_tick,
            },
        )
        mailbox, stop = Mailbox(), Flag()
        with mailbox.worker(raw_consumer_main, cfg, stop):
            await mailbox.wait("raw_consumer_started", 60)
            producer = await producer_factory(devstack.kafka, client_id="bench-raw")()
            try:
                return await _measure(producer, topic, params, payload_bytes, mailbox)
            finally:
                await producer.stop()


async def _measure(
    producer: AIOKafkaProducer, topic: str, params: Params, size: int, mailbox: Mailbox
) -> RawResult:
    for partition in range(params.partitions):
        await producer.send_and_wait(
            topic, message("warmup", partition, size), partition=partition, headers=HEADERS
        )
    await mailbox.wait("raw_warmup_done", 60)
    started, acked = await _blast(producer, topic, params, size)
    last = await mailbox.wait("raw_throughput_done", params.timeout_s)
    latency, pacing = await _latency_phase(producer, topic, params, size, mailbox)
    return RawResult(
        params.events / (last - started), params.events / (acked - started), latency, pacing
    )


async def _blast(
    producer: AIOKafkaProducer, topic: str, params: Params, size: int
) -> tuple[float, float]:
    """Send ``params.events`` messages as fast as the producer takes them; (first send, all
    acknowledged), wall clock. The messages are built before the clock starts."""
    batch = [(message("throughput", s, size), params.key(s).encode()) for s in range(params.events)]
    started = time.time()
    pending = [await producer.send(topic, value, key=key, headers=HEADERS) for value, key in batch]
    await asyncio.gather(*pending)
    return started, time.time()


async def _latency_phase(
    producer: AIOKafkaProducer, topic: str, params: Params, size: int, mailbox: Mailbox
) -> tuple[Latencies, Pacing]:
    pending: list[asyncio.Future[Any]] = []

    async def send(i: int) -> None:
        for s in range(i * params.per_tick, (i + 1) * params.per_tick):
            pending.append(
                await producer.send(
                    topic, message("latency", s, size), key=params.key(s).encode(), headers=HEADERS
                )
            )

    began = time.time()
    pacing = await paced(params.ticks, params.tick_s, params.per_tick, send)
    await asyncio.gather(*pending)
    samples = await mailbox.wait("raw_latency_done", params.timeout_s)
    cutoff = began + params.warmup_s
    return Latencies.of([ms for sent, ms in samples if sent >= cutoff]), pacing


async def raw_consumer_main(mailbox: Any, cfg: RawConsumerConfig, stop: Flag) -> None:
    """Count every phase's messages; report when a phase is complete (latency: the samples)."""
    consumer = AIOKafkaConsumer(
        **cfg.kafka.options(),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        client_id="bench-raw-consumer",
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(cfg.topic, p) for p in range(cfg.partitions)])
        mailbox.put(("raw_consumer_started", None))
        await _consume(consumer, mailbox, cfg, stop)
    finally:
        await consumer.stop()


async def _consume(
    consumer: AIOKafkaConsumer, mailbox: Any, cfg: RawConsumerConfig, stop: Flag
) -> None:
    counts: Counter[str] = Counter()
    samples: list[tuple[float, float]] = []
    while not stop.is_set():
        batches = await consumer.getmany(timeout_ms=100, max_records=cfg.batch_size)
        now = time.time()
        for records in batches.values():
            for record in records:
                body = json.loads(record.value)
                counts[body["phase"]] += 1
                if body["phase"] == "latency":
                    samples.append((body["sent"], (now - body["sent"]) * 1000))
                if counts[body["phase"]] == cfg.expected[body["phase"]]:
                    mailbox.put(
                        (
                            f"raw_{body['phase']}_done",
                            samples if body["phase"] == "latency" else now,
                        )
                    )
