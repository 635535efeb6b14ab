"""Follows topics into an in-memory projection: identity's access state, the catalog's index.

Start-up order matters: the consumer is positioned at the end of every partition *before* the
snapshot is read, so every change committed after the snapshot is also in the stream; changes in
both are deduplicated by their versions. No consumer group: every gateway instance reads every
partition. On any failure the follower starts over (position, snapshot, follow), which is safe
for the same reason. Latency from a commit to the projection is the relay's (it wakes on
NOTIFY) plus one fetch: well under a second.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import httpx
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition

from slipway_contracts import Envelope
from slipway_contracts.topics import TOPICS_BY_NAME
from slipway_libs import retry
from slipway_libs.actor import INTERNAL_TOKEN_HEADER
from slipway_libs.settings import KafkaConnection

log = structlog.get_logger(__name__)


class ProjectionFollower:
    def __init__(
        self,
        *,
        name: str,
        topics: Sequence[str],
        snapshot_url: str,
        load: Callable[[dict[str, Any]], None],
        apply: Callable[[str, dict[str, Any]], None],
        kafka: KafkaConnection,
        http: httpx.AsyncClient,
        internal_token: str | None,
        topic_prefix: str = "",
        poll_ms: int = 100,
    ) -> None:
        self.name = name
        self._topics = list(topics)
        self._prefix = topic_prefix
        self._snapshot_url = snapshot_url
        self._load = load
        self._apply_change = apply
        self._kafka = kafka
        self._http = http
        self._internal_token = internal_token
        self._poll_ms = poll_ms
        self.applied = 0

    async def run(self) -> None:
        await retry.forever(
            self._follow,
            event="projection.follow_failed",
            backoff=retry.Backoff(0.2, 5.0),
            retry_on=_starting_over_heals,
            projection=self.name,
        )

    async def _follow(self) -> None:
        consumer = AIOKafkaConsumer(
            **self._kafka.options(),
            group_id=None,
            enable_auto_commit=False,
            client_id=f"gateway-{self.name}",
        )
        await consumer.start()
        try:
            await self._position_at_end(consumer)
            self._load(await self._snapshot())
            log.info("projection.loaded", projection=self.name)
            while True:
                batches = await consumer.getmany(timeout_ms=self._poll_ms)
                for records in batches.values():
                    for record in records:
                        self._apply(record.value)
        finally:
            await consumer.stop()

    async def _position_at_end(self, consumer: AIOKafkaConsumer) -> None:
        existing = await consumer.topics()
        tps = []
        for topic in self._topics:
            name = self._prefix + topic
            if name not in existing:
                raise RuntimeError(f"topic {name} not found")
            # the partition count is the one the topic spec creates the topic with
            tps += [TopicPartition(name, p) for p in range(TOPICS_BY_NAME[topic].partitions)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        for tp in tps:
            await consumer.position(tp)  # resolve now, before the snapshot is read

    async def _snapshot(self) -> dict[str, Any]:
        headers = {INTERNAL_TOKEN_HEADER: self._internal_token} if self._internal_token else {}
        response = await self._http.get(self._snapshot_url, headers=headers)
        response.raise_for_status()
        snapshot: dict[str, Any] = response.json()
        return snapshot

    def _apply(self, raw: bytes | None) -> None:
        try:
            envelope = Envelope.from_json(raw or b"")
        except ValueError:
            log.error("projection.undecodable_event", projection=self.name)
            return
        self._apply_change(envelope.type, envelope.data)
        self.applied += 1


def _starting_over_heals(exc: BaseException) -> bool:
    """Every failure: starting over rebuilds the projection from a fresh snapshot, whatever went
    wrong (Kafka or the snapshot's service unreachable, a topic not created yet, a change that
    would not apply), and the gateway must not stop answering for it."""
    return isinstance(exc, Exception)
