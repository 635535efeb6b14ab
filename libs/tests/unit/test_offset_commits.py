"""Background offset commits (``bus.OffsetCommits``): never past a processed record, flushed
when asked, against a fake consumer that checks what aiokafka checks (assigned partitions)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import IllegalStateError, KafkaConnectionError

from slipway_libs.bus import OffsetCommits, _rewind

A, B = TopicPartition("t", 0), TopicPartition("t", 1)


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
