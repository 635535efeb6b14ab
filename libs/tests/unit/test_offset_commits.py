"""Background offset commits (``bus.OffsetCommits``): never past a processed record, flushed
when asked, against a fake consumer that checks what aiokafka checks (assigned partitions); and
``bus.OneAhead``, which applies one batch while the next is decoded."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import IllegalStateError, KafkaConnectionError

from slipway_libs.bus import OffsetCommits, OneAhead, _rewind

A, B, C = TopicPartition("t", 0), TopicPartition("t", 1), TopicPartition("t", 2)


@dataclass
class Rec:
    topic: str
    partition: int
    offset: int
    key: bytes | None = None
    value: bytes | None = None
    headers: list[tuple[str, bytes]] = field(default_factory=list)


def recs(tp: TopicPartition, *offsets: int) -> tuple[Rec, ...]:
    return tuple(Rec(tp.topic, tp.partition, o) for o in offsets)


class FakeConsumer:
    """Commits take until ``release`` is set; like aiokafka's, a commit of a partition that is
    not assigned fails."""

    def __init__(self, assigned: set[TopicPartition]) -> None:
        self.assigned = assigned
        self.committed: list[dict[TopicPartition, int]] = []
        self.release = asyncio.Event()
        self.release.set()
        self.fail_next: Exception | None = None
        self.seeks: dict[TopicPartition, int] = {}

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        await self.release.wait()
        if self.fail_next is not None:
            failure, self.fail_next = self.fail_next, None
            raise failure
        if not offsets.keys() <= self.assigned:
            raise IllegalStateError("Partition is not assigned")
        self.committed.append(dict(offsets))

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks[tp] = offset


def make(consumer: FakeConsumer) -> OffsetCommits:
    commits = OffsetCommits("g")
    commits.bind(consumer)  # type: ignore[arg-type]
    return commits


async def test_the_offset_committed_is_the_one_after_the_last_processed_record() -> None:
    consumer = FakeConsumer({A, B})
    commits = make(consumer)
    commits.processed((*recs(A, 0, 1, 2), *recs(B, 7)))
    await commits.flush()
    assert consumer.committed == [{A: 3, B: 8}]


async def test_batches_processed_while_a_commit_runs_go_together_in_the_next_one() -> None:
    consumer = FakeConsumer({A, B})
    consumer.release.clear()
    commits = make(consumer)
    commits.processed(recs(A, 0, 1))  # starts a commit, held by the broker
    await asyncio.sleep(0)
    commits.processed(recs(A, 2, 3))
    commits.processed(recs(B, 0))
    assert consumer.committed == []  # nothing is awaited by the batches
    consumer.release.set()
    await commits.flush()
    assert consumer.committed == [{A: 2}, {A: 4, B: 1}]


async def test_flush_waits_for_the_commit_in_flight_and_commits_the_rest() -> None:
    consumer = FakeConsumer({A})
    consumer.release.clear()
    commits = make(consumer)
    commits.processed(recs(A, 0))
    await asyncio.sleep(0)
    commits.processed(recs(A, 1))
    flushing = asyncio.create_task(commits.flush())
    await asyncio.sleep(0.01)
    assert not flushing.done()  # still waiting for the broker
    consumer.release.set()
    await asyncio.wait_for(flushing, 5)
    assert consumer.committed[-1] == {A: 2}


async def test_a_partition_taken_away_is_not_committed_by_this_member() -> None:
    consumer = FakeConsumer({A, B})
    consumer.release.clear()
    commits = make(consumer)
    commits.processed((*recs(A, 0), *recs(B, 0)))
    consumer.assigned = {A}  # a rebalance gave B to another member meanwhile
    consumer.release.set()
    await commits.flush()
    assert consumer.committed == [{A: 1}]


async def test_a_failed_commit_is_dropped_and_the_next_one_carries_newer_offsets() -> None:
    consumer = FakeConsumer({A})
    consumer.fail_next = KafkaConnectionError("coordinator gone")
    commits = make(consumer)
    commits.processed(recs(A, 0, 1))
    await commits.flush()
    assert consumer.committed == []
    commits.processed(recs(A, 2))
    await commits.flush()
    assert consumer.committed == [{A: 3}]


async def test_flush_before_any_batch_commits_nothing() -> None:
    commits = OffsetCommits("g")
    await asyncio.wait_for(commits.flush(), 5)
    consumer = FakeConsumer({A})
    commits.bind(consumer)  # type: ignore[arg-type]
    await commits.flush()
    assert consumer.committed == []


def test_rewind_seeks_every_partition_back_to_its_earliest_record_of_the_batch() -> None:
    consumer: Any = FakeConsumer({A, B})
    _rewind(consumer, (*recs(A, 5, 6), *recs(B, 9), *recs(A, 7)))
    assert consumer.seeks == {A: 5, B: 9}


class FakeInbox:
    """Decodes at once; each apply waits until the test lets it through (or fails it)."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.gates: dict[int, asyncio.Future[None]] = {}

    def decode(self, records: tuple[Rec, ...]) -> tuple[Rec, ...]:
        self.log.append(f"decode {records[0].offset}")
        return records

    async def decode_yielding(self, records: tuple[Rec, ...]) -> tuple[Rec, ...]:
        await asyncio.sleep(0)
        return self.decode(records)

    async def apply(self, decoded: tuple[Rec, ...]) -> None:
        first = decoded[0].offset
        self.log.append(f"apply {first}")
        gate = self.gates.setdefault(first, asyncio.get_running_loop().create_future())
        await gate
        self.log.append(f"applied {first}")

    def let_through(self, first: int, failure: BaseException | None = None) -> None:
        gate = self.gates.setdefault(first, asyncio.get_running_loop().create_future())
        if failure is None:
            gate.set_result(None)
        else:
            gate.set_exception(failure)


def feed_for(consumer: FakeConsumer) -> tuple[OneAhead, FakeInbox, OffsetCommits]:
    inbox = FakeInbox()
    commits = make(consumer)
    return OneAhead(inbox, commits), inbox, commits  # type: ignore[arg-type]


async def test_the_next_batch_is_decoded_while_one_applies_and_applied_after_it() -> None:
    consumer = FakeConsumer({A})
    feed, inbox, commits = feed_for(consumer)
    await feed.take(consumer, recs(A, 0, 1))  # type: ignore[arg-type]
    second = asyncio.create_task(feed.take(consumer, recs(A, 2, 3)))  # type: ignore[arg-type]
    await asyncio.sleep(0.01)
    assert inbox.log == ["decode 0", "apply 0", "decode 2"]  # decoded while the first applies
    assert consumer.committed == []  # nothing applied yet, nothing committed
    inbox.let_through(0)
    await asyncio.wait_for(second, 5)
    await asyncio.sleep(0.01)
    assert inbox.log[-2:] == ["applied 0", "apply 2"]
    assert consumer.committed == [{A: 2}]  # the first batch only: the second is not applied
    inbox.let_through(2)
    await feed.settle()
    await commits.flush()
    assert consumer.committed[-1] == {A: 4}


async def test_a_failed_apply_rewinds_its_batch_and_the_one_behind_it_and_is_raised() -> None:
    consumer = FakeConsumer({A, B})
    feed, inbox, _ = feed_for(consumer)
    await feed.take(consumer, (*recs(A, 10, 11), *recs(B, 3)))  # type: ignore[arg-type]
    behind = asyncio.create_task(
        feed.take(consumer, (*recs(A, 12), *recs(B, 4), *recs(C, 0)))  # type: ignore[arg-type]
    )
    await asyncio.sleep(0.01)
    inbox.let_through(10, RuntimeError("inbox bug"))
    with pytest.raises(RuntimeError, match="inbox bug"):
        await asyncio.wait_for(behind, 5)
    assert consumer.seeks == {A: 10, B: 3, C: 0}
    assert "apply 12" not in inbox.log  # the batch behind it was dropped
    assert consumer.committed == []
    # the records come again: consumption goes on from there
    consumer.seeks.clear()
    inbox.gates.clear()
    inbox.let_through(10)
    await feed.take(consumer, (*recs(A, 10, 11), *recs(B, 3)))  # type: ignore[arg-type]
    await feed.settle()
    await asyncio.sleep(0.01)
    assert consumer.committed == [{A: 12, B: 4}]


async def test_once_closing_a_batch_is_applied_and_committed_inside_its_call() -> None:
    consumer = FakeConsumer({A})
    feed, inbox, commits = feed_for(consumer)
    commits.closing = True
    inbox.let_through(0)
    await feed.take(consumer, recs(A, 0))  # type: ignore[arg-type]
    assert consumer.committed == [{A: 1}]
