"""Reading ``deployer.deployment.v1`` for the organizations' live event streams.

- ``DeploymentEventFeed.run``: one reader per gateway process, on every partition, without a
  consumer group (every gateway instance serves every organization), from the end of the topic
  at start-up; it fills the bounded ``EventBuffer`` and wakes the followers. After a failure it
  reads on from where it stood, so the buffer stays whole.
- ``DeploymentEventFeed.follow``: one follower's events from a position (``domain.event_stream``):
  from the buffer when it covers the position, else read back from Kafka with a reader of the
  follower's own until the buffer covers it (a resume after a gateway restart, or a follower so
  slow the buffer evicted what it had not read). What the follower may see is decided per event
  by ``visible``, at the time it is sent (a role changed meanwhile applies at once).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from slipway_contracts.events.deployer import DEPLOYMENT_TOPIC
from slipway_contracts.topics import TOPICS_BY_NAME
from slipway_gateway.domain.catalog_index import CatalogIndex
from slipway_gateway.domain.event_stream import EventBuffer, Position, StreamEvent, public_event
from slipway_libs import retry
from slipway_libs.settings import KafkaConnection

log = structlog.get_logger(__name__)

PARTITIONS = TOPICS_BY_NAME[DEPLOYMENT_TOPIC].partitions


@dataclass(frozen=True)
class Gap:
    """Records a follower asked for are gone (older than the topic's retention)."""

    lost: int


@dataclass(frozen=True)
class Live:
    """The follower has every event up to ``position``: from now on it is sent new ones."""

    position: Position


FeedItem = StreamEvent | Gap | Live


class DeploymentEventFeed:
    def __init__(
        self,
        *,
        kafka: KafkaConnection,
        index: CatalogIndex,
        topic_prefix: str = "",
        per_organization: int = 1000,
        organizations: int = 1000,
        poll_ms: int = 100,
    ) -> None:
        self._kafka = kafka
        self._index = index
        self._topic = topic_prefix + DEPLOYMENT_TOPIC
        self._poll_ms = poll_ms
        self.buffer = EventBuffer(
            PARTITIONS, per_organization=per_organization, organizations=organizations
        )
        self.started = False
        self._changed = asyncio.Event()

    @property
    def partitions(self) -> int:
        return PARTITIONS

    # --- the live reader

    async def run(self) -> None:
        await retry.forever(
            self._read,
            event="events.feed_failed",
            backoff=retry.Backoff(0.2, 5.0),
            retry_on=lambda exc: isinstance(exc, Exception),
        )

    async def _read(self) -> None:
        consumer = self._consumer("gateway-events")
        await consumer.start()
        try:
            tps = await self._assign(consumer)
            if self.started:  # after a failure: on from where the buffer stands
                for tp in tps:
                    consumer.seek(tp, self.buffer.position.offsets[tp.partition])
            else:
                await consumer.seek_to_end(*tps)
                self.buffer.start(await _positions(consumer, tps))
                self.started = True
                self._wake()
                log.info("events.feed_started", position=self.buffer.position.encode())
            while True:
                batches = await consumer.getmany(timeout_ms=self._poll_ms)
                for records in batches.values():
                    for record in records:
                        event = self._event(record, self.buffer.position)
                        if event is not None:
                            self.buffer.add(event)
                if batches:
                    self.buffer.advance(await _positions(consumer, tps))
                    self._wake()
        finally:
            await consumer.stop()

    def _wake(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def changed(self) -> asyncio.Event:
        """Set at the next change of the buffer (take it *before* reading the buffer)."""
        return self._changed

    # --- one follower

    async def follow(
        self, organization_id: uuid.UUID, since: Position | None, *, wake_every_s: float
    ) -> AsyncIterator[FeedItem]:
        """The organization's events after ``since`` (None: from now), without end: the held
        ones, those read back, then new ones as they come; ``Live`` each time it has them all,
        and at least every ``wake_every_s`` (its caller's clock: heartbeats, lifetime)."""
        while not self.started:
            await _until(self.changed(), wake_every_s)
        position = since or self.buffer.position
        while True:
            changed = self.changed()
            if not self.buffer.covers(organization_id, position):
                async for item in self._read_back(organization_id, position):
                    if isinstance(item, StreamEvent):
                        position = position.join(item.after)
                    yield item
                continue
            held, now = self.buffer.after(organization_id, position), self.buffer.position
            for event in held:
                yield event
            position = position.join(now)
            yield Live(position)
            await _until(changed, wake_every_s)

    async def _read_back(
        self, organization_id: uuid.UUID, since: Position
    ) -> AsyncIterator[StreamEvent | Gap]:
        """From Kafka, from ``since`` until the buffer covers where this reader stands."""
        consumer = self._consumer("gateway-events-resume")
        await consumer.start()
        try:
            tps = await self._assign(consumer)
            first = await consumer.beginning_offsets(tps)
            lost = sum(max(0, first[tp] - since.offsets[tp.partition]) for tp in tps)
            if lost:
                yield Gap(lost)
            for tp in tps:
                consumer.seek(tp, max(since.offsets[tp.partition], first[tp]))
            position = since.join(await _positions(consumer, tps))
            while not self.buffer.covers(organization_id, position):
                batches = await consumer.getmany(timeout_ms=self._poll_ms)
                for records in batches.values():
                    for record in records:
                        event = self._event(record, position)
                        position = position.passed(record.partition, record.offset)
                        if event is not None and event.organization_id == organization_id:
                            yield event
                position = position.join(await _positions(consumer, tps))
        finally:
            await consumer.stop()

    # --- Kafka

    def _consumer(self, client_id: str) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            **self._kafka.options(), group_id=None, enable_auto_commit=False, client_id=client_id
        )

    async def _assign(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        if self._topic not in await consumer.topics():
            raise RuntimeError(f"topic {self._topic} not found")
        tps = [TopicPartition(self._topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        return tps

    def _event(self, record: ConsumerRecord[Any, Any], before: Position) -> StreamEvent | None:
        """The record as a stream event (None: undecodable), ``after`` where it was read."""
        after = before.passed(record.partition, record.offset)
        try:
            envelope = _envelope(record.value)
            data = envelope["data"]
            organization_id = uuid.UUID(str(data["organization_id"]))
            environment_id = uuid.UUID(str(data["environment_id"]))
        except (ValueError, KeyError, TypeError):
            log.error("events.undecodable", partition=record.partition, offset=record.offset)
            return None
        environment = self._index.resource("environment", environment_id)
        return StreamEvent(
            partition=record.partition,
            offset=record.offset,
            organization_id=organization_id,
            environment_id=environment_id,
            type=str(envelope["type"]),
            body=public_event(envelope, environment.project_id if environment else None),
            after=after,
        )


def _envelope(raw: bytes | None) -> dict[str, Any]:
    value = json.loads(raw or b"")
    if not isinstance(value, dict) or not isinstance(value.get("data"), dict):
        raise ValueError("not an envelope")
    return value


async def _until(changed: asyncio.Event, timeout_s: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(changed.wait(), timeout_s)


async def _positions(consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> Position:
    """The consumer's position on every partition (past control records too)."""
    offsets = [0] * PARTITIONS
    for tp in tps:
        offsets[tp.partition] = await consumer.position(tp)
    return Position(tuple(offsets))
