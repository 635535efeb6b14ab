"""The logs service SIGKILLed while it ingests: no line lost, none stored twice, every stream's
cursors 1..n with its lines in the order they were produced.

A producer publishes live lines of 20 services to the platform's ``logs.lines.v1`` (as the
deployer does: events keyed by the service, several lines each) while a killer SIGKILLs the
logs service's process group three times, each time once it has stored more lines than at the
last kill, and restarts it. A kill counts as hitting work in flight when, once the process is
dead, fewer lines are stored than the broker had acknowledged. At the end every line is stored
exactly once, in order, with gap-free cursors.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from slipway_contracts import new_event
from slipway_contracts.events.logs import LINES_TOPIC, LogLine, LogLinesAppended
from slipway_libs.testing.platform import Platform

pytestmark = [pytest.mark.fault, pytest.mark.integration]

STREAMS = 20
EVENTS = 1_500
LINES_PER_EVENT = 20
KILLS = 3


@pytest.fixture(scope="module")
async def platform(platform_factory) -> Platform:
    return await platform_factory(["logs"])


class Producer:
    """Live lines of ``STREAMS`` services, each line ``<service>:<n>`` with n counting up."""

    def __init__(self, platform: Platform) -> None:
        self.topic = platform.prefix + LINES_TOPIC
        self.organization_id = uuid.uuid4()
        self.services = [uuid.uuid4() for _ in range(STREAMS)]
        self.sent = dict.fromkeys(self.services, 0)
        self.acknowledged = 0  # lines the broker acknowledged
        self.kafka = AIOKafkaProducer(
            **platform.kafka.options(), acks="all", enable_idempotence=True, linger_ms=5
        )

    async def run(self) -> None:
        for i in range(0, EVENTS, 50):
            batch = [self._event(self.services[n % STREAMS]) for n in range(i, i + 50)]
            sent = [await self.kafka.send(self.topic, value, key=key) for key, value in batch]
            await asyncio.gather(*sent)
            self.acknowledged += len(batch) * LINES_PER_EVENT
            await asyncio.sleep(0.05)  # spread the production over the kills

    def _event(self, service: uuid.UUID) -> tuple[bytes, bytes]:
        first = self.sent[service]
        self.sent[service] += LINES_PER_EVENT
        payload = LogLinesAppended(
            kind="live",
            service_id=service,
            lines=[
                LogLine(at=datetime.now(UTC), stream="stdout", text=f"{service}:{n}")
                for n in range(first, first + LINES_PER_EVENT)
            ],
        )
        event = new_event(
            payload, subject=str(service), source="test", organization_id=self.organization_id
        )
        return event.subject.encode(), event.to_json()


async def _stored(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM log_lines"))


async def _until(check: Callable[[], Awaitable[bool]], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s:g} s: {what}")
        await asyncio.sleep(0.05)


async def test_ingest_killed_mid_stream_loses_nothing_and_stores_nothing_twice(
    platform: Platform,
) -> None:
    pool = await asyncpg.create_pool(
        platform.env["SLIPWAY_LOGS_DATABASE_URL"], min_size=1, max_size=2
    )
    producer = Producer(platform)
    await producer.kafka.start()
    try:
        writing = asyncio.create_task(producer.run())
        hits, last = 0, 0
        for _ in range(KILLS):

            async def progressed(since: int = last) -> bool:
                return await _stored(pool) > since

            await _until(progressed, 60, "the logs service stored more lines")
            platform.stop("logs", signal.SIGKILL)
            last = await _stored(pool)
            hits += last < producer.acknowledged
            platform.start("logs")
            await platform.wait_ready("logs")
        await writing
        total = EVENTS * LINES_PER_EVENT

        async def everything() -> bool:
            return await _stored(pool) >= total

        await _until(everything, 120, f"all {total} lines stored")
        rows = await pool.fetch(
            "SELECT stream_id, cursor, part, text FROM log_lines ORDER BY stream_id, cursor"
        )
    finally:
        await producer.kafka.stop()
        await pool.close()
    assert hits >= 1, "no kill found produced lines not yet stored: the fault missed the ingest"
    assert len(rows) == total, f"{len(rows) - total} lines stored twice"
    by_stream: dict[uuid.UUID, list[asyncpg.Record]] = {}
    for row in rows:
        by_stream.setdefault(row["stream_id"], []).append(row)
    assert set(by_stream) == set(producer.services)
    for service, lines in by_stream.items():
        assert [r["cursor"] for r in lines] == list(range(1, len(lines) + 1)), service
        assert [r["text"] for r in lines] == [f"{service}:{n}" for n in range(len(lines))]
        assert all(r["part"] == 1 for r in lines)
