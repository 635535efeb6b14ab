"""Ingest through the real Kafka broker into the real PostgreSQL: cursors in order per stream,
a notification per stream on commit, redelivered events stored once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import uuid
from collections.abc import AsyncIterator, Sequence

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from services.logs.tests.integration.conftest import member_of
from services.logs.tests.integration.events import lines_event
from slipway_contracts import Envelope
from slipway_contracts.events.logs import LINES_TOPIC
from slipway_libs import db
from slipway_libs.bus import consuming, delete_topics, ensure_topics
from slipway_libs.testing.pipeline import wait_until
from slipway_logs.db.queries import NOTIFY_CHANNEL
from slipway_logs.events.subscribers import consumers

pytestmark = pytest.mark.integration


@contextlib.asynccontextmanager
async def running_ingest(pool: asyncpg.Pool, kafka) -> AsyncIterator[str]:
    """The logs service's own consumers on a topic prefix of this test's; yields the topic."""
    prefix = f"t{secrets.token_hex(4)}."
    topic = prefix + LINES_TOPIC
    await ensure_topics(kafka, [_spec(topic)])
    try:
        async with consuming(kafka, pool, consumers(), client_id="test-logs", topic_prefix=prefix):
            yield topic
    finally:
        await delete_topics(kafka, [topic, f"{prefix}dlq.logs.lines"])


def _spec(topic: str):  # type: ignore[no-untyped-def]
    from dataclasses import replace

    from slipway_contracts import TOPICS

    [lines] = [t for t in TOPICS if t.name == LINES_TOPIC]
    return replace(lines, name=topic)


async def produce(kafka, topic: str, envelopes: Sequence[Envelope]) -> None:
    producer = AIOKafkaProducer(**kafka.options(), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for envelope in envelopes:
            await producer.send(topic, envelope.to_json(), key=envelope.subject.encode())
        await producer.flush()
    finally:
        await producer.stop()


async def stored(pool: asyncpg.Pool, stream_id: uuid.UUID) -> list[tuple[int, str, str]]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT cursor, kind, text FROM log_lines WHERE stream_id = $1 ORDER BY cursor, part",
            stream_id,
        )
    return [(r["cursor"], r["kind"], r["text"]) for r in rows]


async def _count_is(pool: asyncpg.Pool, stream_id: uuid.UUID, count: int) -> bool:
    return len(await stored(pool, stream_id)) == count


async def test_lines_get_cursors_in_order_per_stream_and_a_notification_on_commit(
    pool, logs_db, devstack
) -> None:
    org, deployment, service = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    heard: list[dict[str, object]] = []
    listener = await db.connect(logs_db[0])
    await listener.add_listener(NOTIFY_CHANNEL, lambda *a: heard.append(json.loads(a[3])))
    events = [
        lines_event(org, "build 1", "build 2", kind="build", deployment_id=deployment),
        lines_event(org, "live 1", kind="live", service_id=service),
        lines_event(org, "deploy 1", kind="deploy", deployment_id=deployment),
        *[lines_event(org, f"live {n}", kind="live", service_id=service) for n in range(2, 40)],
    ]
    try:
        async with running_ingest(pool, devstack.kafka) as topic:
            await produce(devstack.kafka, topic, events)
            await wait_until(lambda: _count_is(pool, service, 39))
            await wait_until(lambda: _count_is(pool, deployment, 3))
        assert await stored(pool, deployment) == [
            (1, "build", "build 1"),
            (2, "build", "build 2"),
            (3, "deploy", "deploy 1"),
        ]
        assert await stored(pool, service) == [(n, "live", f"live {n}") for n in range(1, 40)]

        async def heard_the_heads() -> bool:
            return {"cursor": 39, "stream_id": str(service), "stream_kind": "service"} in heard

        await wait_until(heard_the_heads)
        # per stream, the notified heads only grow (commit order is cursor order)
        for stream in (str(service), str(deployment)):
            heads = [h["cursor"] for h in heard if h["stream_id"] == stream]
            assert heads == sorted(heads) and len(set(heads)) == len(heads)
        assert {"cursor": 3, "stream_id": str(deployment), "stream_kind": "deployment"} in heard
    finally:
        await listener.close()


async def test_redelivered_events_store_nothing_twice(pool, devstack) -> None:
    org, service = uuid.uuid4(), uuid.uuid4()
    events = [lines_event(org, f"line {n}", kind="live", service_id=service) for n in range(20)]
    async with running_ingest(pool, devstack.kafka) as topic:
        await produce(devstack.kafka, topic, events)
        await wait_until(lambda: _count_is(pool, service, 20))
        # Kafka delivers them all again (a consumer that died before committing its offsets),
        # some twice within one batch, then one new event behind them
        marker = lines_event(org, "after the copies", kind="live", service_id=service)
        await produce(devstack.kafka, topic, [*events, *events[:5], marker])
        await wait_until(lambda: _count_is(pool, service, 21))
    got = await stored(pool, service)
    assert [text for _, _, text in got] == [f"line {n}" for n in range(20)] + ["after the copies"]
    assert [cursor for cursor, _, _ in got] == list(range(1, 22))


async def test_concurrent_ingests_of_one_stream_commit_in_cursor_order(pool, logs_db) -> None:
    """Two transactions appending to one stream: the second waits on the counter row until the
    first commits, so no reader ever sees a cursor appear below one it has already seen."""
    from slipway_logs.usecases import ingest

    org, service = uuid.uuid4(), uuid.uuid4()
    first, second = await pool.acquire(), await pool.acquire()
    try:
        tx1 = first.transaction()
        await tx1.start()
        await ingest.append(first, [lines_event(org, "a", kind="live", service_id=service)])
        tx2 = second.transaction()
        await tx2.start()
        blocked = asyncio.create_task(
            ingest.append(second, [lines_event(org, "b", kind="live", service_id=service)])
        )
        waiter = second.get_server_pid()

        async def waits_on_a_lock() -> bool:
            async with pool.acquire() as conn:
                return bool(
                    await conn.fetchval(
                        "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1",
                        waiter,
                    )
                )

        await wait_until(waits_on_a_lock)
        assert not blocked.done(), "the second ingest must wait for the first one's counter lock"
        await tx1.commit()
        await blocked
        await tx2.commit()
    finally:
        await pool.release(first)
        await pool.release(second)
    assert [(c, t) for c, _, t in await stored(pool, service)] == [(1, "a"), (2, "b")]


async def test_the_api_scopes_reads_to_the_callers_organization(pool, api) -> None:
    from slipway_logs.usecases import ingest

    org, other, service = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    async with db.transaction(pool) as conn:
        await ingest.append(conn, [lines_event(org, "mine", kind="live", service_id=service)])
    path = f"/services/{service}/logs"
    mine = (await api.get(path, headers=member_of(org))).json()
    assert [x["text"] for x in mine["items"]] == ["mine"] and mine["head_cursor"] == 1
    theirs = (await api.get(path, headers=member_of(other))).json()
    assert theirs == {"items": [], "next_cursor": None, "prev_cursor": None, "head_cursor": 0}
    # a service's id is not a deployment's stream
    assert (await api.get(f"/deployments/{service}/logs", headers=member_of(org))).json()[
        "items"
    ] == []
