"""How the relay lays a batch of outbox rows into Kafka record batches (a fake producer whose
batches hold few records, as aiokafka's BatchBuilder refuses a record when it is full)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiokafka.partitioner import DefaultPartitioner

from slipway_libs import relay
from slipway_libs.relay import OutboxRelay, partition_of

TRACEPARENT = "00-" + "1" * 32 + "-" + "2" * 16 + "-01"


class SmallBatch:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.records: list[dict[str, Any]] = []

    def append(self, **record: Any) -> object | None:
        if len(self.records) == self.capacity:
            return None
        self.records.append(record)
        return object()


class RecordingProducer:
    def __init__(self, partitions: int, capacity: int) -> None:
        self.partitions = set(range(partitions))
        self.capacity = capacity
        self.sent: list[tuple[str, int, list[dict[str, Any]]]] = []

    async def partitions_for(self, _topic: str) -> set[int]:
        return self.partitions

    def create_batch(self) -> SmallBatch:
        return SmallBatch(self.capacity)

    async def send_batch(self, batch: SmallBatch, topic: str, *, partition: int) -> Any:
        self.sent.append((topic, partition, batch.records))
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def row(seq: int, key: str) -> dict[str, Any]:
    return {
        "id": seq,
        "topic": "things",
        "key": key,
        "event_id": f"e{seq}",
        "event_type": "test.Counted",
        "payload": json.dumps({"seq": seq}),
        "headers": json.dumps({"traceparent": TRACEPARENT}),
    }


async def _send(producer: RecordingProducer, rows: list[dict[str, Any]]) -> None:
    relaying = OutboxRelay(dsn="unused", producer=None, topic_prefix="p.")  # type: ignore[arg-type]
    await relaying._send(producer, rows)  # type: ignore[arg-type]


async def test_each_partition_gets_its_rows_in_id_order_across_full_batches() -> None:
    producer = RecordingProducer(partitions=3, capacity=2)
    rows = [row(i, f"k{i % 4}") for i in range(20)]
    await _send(producer, rows)
    by_partition: dict[int, list[int]] = {}
    for topic, partition, records in producer.sent:
        assert topic == "p.things"
        assert 1 <= len(records) <= 2
        by_partition.setdefault(partition, []).extend(
            json.loads(r["value"])["seq"] for r in records
        )
    expected: dict[int, list[int]] = {}
    for r in rows:
        expected.setdefault(partition_of(r["key"].encode(), [0, 1, 2], [0, 1, 2]), []).append(
            r["id"]
        )
    assert by_partition == expected
    assert sum(len(seqs) for seqs in by_partition.values()) == 20


async def test_without_an_exporter_a_record_carries_the_rows_context_as_it_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(relay, "exporting", lambda: False)
    producer = RecordingProducer(partitions=1, capacity=10)
    await _send(producer, [row(1, "k")])
    [(_, _, [record])] = producer.sent
    assert record["key"] == b"k"
    assert record["headers"] == [
        ("traceparent", TRACEPARENT.encode()),
        ("event_type", b"test.Counted"),
    ]


async def test_with_an_exporter_a_record_carries_its_publish_span_in_the_rows_trace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(relay, "exporting", lambda: True)
    producer = RecordingProducer(partitions=1, capacity=10)
    await _send(producer, [row(1, "k")])
    [(_, _, [record])] = producer.sent
    headers = dict(record["headers"])
    _, trace_id, span_id, _ = headers["traceparent"].decode().split("-")
    assert trace_id == "1" * 32
    assert span_id != "2" * 16  # the relay's PRODUCER span, child of the row's
    assert headers["event_type"] == b"test.Counted"


def test_partition_of_is_aiokafkas_default_partitioner() -> None:
    partitions = list(range(6))
    for key in [b"a", b"agg-1", b"agg-99", "ünïcode".encode(), b"x" * 300]:
        assert partition_of(key, partitions, partitions) == DefaultPartitioner()(
            key, partitions, partitions
        )
