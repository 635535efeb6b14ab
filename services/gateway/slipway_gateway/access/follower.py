"""Follows ``identity.access.v1`` into the in-memory access projection.

Start-up order matters: the consumer is positioned at the end of every partition *before* the
snapshot is read, so every change committed after the snapshot is also in the stream; changes in
both are deduplicated by their versions. No consumer group: every gateway instance reads every
partition. On any failure the follower starts over (position, snapshot, follow), which is safe
for the same reason. Latency from an identity commit to this projection is the relay's (it
wakes on NOTIFY) plus one fetch (at most ``poll_ms``): well under a second.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition

from slipway_contracts import Envelope
from slipway_contracts.events.identity import ACCESS_TOPIC
from slipway_contracts.topics import TOPICS_BY_NAME
from slipway_gateway.domain.projection import AccessProjection
from slipway_libs.actor import INTERNAL_TOKEN_HEADER

log = structlog.get_logger(__name__)


class AccessFollower:
    def __init__(
        self,
        *,
        projection: AccessProjection,
        bootstrap_servers: str,
        identity_url: str,
        http: httpx.AsyncClient,
        internal_token: str | None,
        topic_prefix: str = "",
        poll_ms: int = 100,
    ) -> None:
        self.projection = projection
        self._bootstrap = bootstrap_servers
        self._identity = identity_url
        self._http = http
        self._internal_token = internal_token
        self._poll_ms = poll_ms
        self._topic = topic_prefix + ACCESS_TOPIC
        self.applied = 0

    async def run(self) -> None:
        delay = 0.2
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("access.follow_failed", error=repr(exc), retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _follow(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=None,
            enable_auto_commit=False,
            client_id="gateway-access",
        )
        await consumer.start()
        try:
            await self._position_at_end(consumer)
            self.projection.load_snapshot(await self._snapshot())
            log.info("access.projection_loaded", organizations=len(self.projection.organizations))
            while True:
                batches = await consumer.getmany(timeout_ms=self._poll_ms)
                for records in batches.values():
                    for record in records:
                        self._apply(record.value)
        finally:
            await consumer.stop()

    async def _position_at_end(self, consumer: AIOKafkaConsumer) -> None:
        if self._topic not in await consumer.topics():
            raise RuntimeError(f"topic {self._topic} not found")
        # the partition count is the one the topic spec creates the topic with
        partitions = TOPICS_BY_NAME[ACCESS_TOPIC].partitions
        tps = [TopicPartition(self._topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        for tp in tps:
            await consumer.position(tp)  # resolve now, before the snapshot is read

    async def _snapshot(self) -> dict[str, Any]:
        headers = {INTERNAL_TOKEN_HEADER: self._internal_token} if self._internal_token else {}
        response = await self._http.get(
            f"{self._identity}/internal/v1/access-snapshot", headers=headers
        )
        response.raise_for_status()
        snapshot: dict[str, Any] = response.json()
        return snapshot

    def _apply(self, raw: bytes | None) -> None:
        try:
            envelope = Envelope.from_json(raw or b"")
        except ValueError:
            log.error("access.undecodable_event")
            return
        self.projection.apply(envelope.type, envelope.data)
        self.applied += 1
