"""One trace from an HTTP request through the outbox, the Kafka hop and the consumer."""

from __future__ import annotations

import uuid

import asyncpg
import httpx
import pytest
from fastapi import APIRouter, Request
from opentelemetry.trace import SpanKind

from slipway_contracts import Envelope
from slipway_libs import db, inbox, outbox, relay
from slipway_libs.http import create_app
from slipway_libs.logging import correlation_id
from slipway_libs.telemetry import current_carrier, tracer
from slipway_libs.testing.pipeline import (
    EFFECTS_DDL,
    counted,
    read_topic,
    record_effect,
    running_consumer,
    running_relay,
    wait_until,
    write_events,
)

pytestmark = pytest.mark.integration


async def test_one_trace_links_request_outbox_kafka_and_consumer(
    database_factory, devstack, topic_factory, span_exporter
) -> None:
    dsn = await database_factory("tracing")
    pool = await db.create_pool(dsn, max_size=4)
    await pool.execute(EFFECTS_DDL)
    topic = await topic_factory(partitions=1)
    router = APIRouter()

    @router.post("/things", status_code=202)
    async def create_thing(request: Request) -> dict[str, str]:
        # what outbox.publish does: the request's correlation id goes into the envelope
        envelope = counted("thing", 1).model_copy(update={"correlation_id": correlation_id.get()})
        async with pool.acquire() as conn, conn.transaction():
            await outbox.append(conn, [(topic, envelope)])
        return {"event_id": str(envelope.id)}

    app = create_app(service="tracing-test", routers=[router])
    group = f"g-{uuid.uuid4().hex[:8]}"
    seen: list[Envelope] = []

    async def handler(conn: asyncpg.Connection, env: Envelope) -> None:
        seen.append(env)
        await record_effect(conn, env)

    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test"
        ) as client:
            response = await client.post("/things", headers={"x-correlation-id": "corr-42"})
        assert response.status_code == 202
        async with (
            running_relay(dsn, devstack.kafka),
            running_consumer(pool, devstack.kafka, topic, group, {"test.Counted": handler}),
        ):
            await wait_until(lambda: _applied(pool))
    finally:
        await pool.close()

    spans = span_exporter.get_finished_spans()
    server = next(s for s in spans if s.kind == SpanKind.SERVER)
    append = next(s for s in spans if s.name == "outbox append")
    publish = next(s for s in spans if s.kind == SpanKind.PRODUCER)
    process = next(s for s in spans if s.kind == SpanKind.CONSUMER)
    trace_id = server.context.trace_id
    assert {s.context.trace_id for s in (append, publish, process)} == {trace_id}
    assert append.parent.span_id == server.context.span_id
    assert publish.parent.span_id == append.context.span_id
    assert process.parent.span_id == publish.context.span_id
    assert seen[0].correlation_id == "corr-42"


async def _applied(pool: asyncpg.Pool) -> bool:
    return await pool.fetchval("SELECT count(*) FROM effects") >= 1


async def test_with_spans_going_nowhere_the_context_still_reaches_the_consumer(
    database_factory, devstack, topic_factory, span_exporter, monkeypatch
) -> None:
    # what a service without an exporter does: the relay and the inbox open no span per event
    monkeypatch.setattr(relay, "exporting", lambda: False)
    monkeypatch.setattr(inbox, "exporting", lambda: False)
    dsn = await database_factory("tracing-off")
    pool = await db.create_pool(dsn, max_size=4)
    await pool.execute(EFFECTS_DDL)
    topic = await topic_factory(partitions=1)
    envelope = counted("thing", 1)
    with tracer().start_as_current_span("request") as request:
        await write_events(pool, topic, [envelope])
    request_trace = format(request.get_span_context().trace_id, "032x")
    stored = await pool.fetchval("SELECT headers->>'traceparent' FROM outbox")
    span_exporter.clear()
    seen: list[str] = []

    async def handler(conn: asyncpg.Connection, env: Envelope) -> None:
        seen.append(current_carrier().get("traceparent", ""))  # what an event it writes carries
        await record_effect(conn, env)

    group = f"g-{uuid.uuid4().hex[:8]}"
    try:
        async with (
            running_relay(dsn, devstack.kafka),
            running_consumer(pool, devstack.kafka, topic, group, {"test.Counted": handler}),
        ):
            await wait_until(lambda: _applied(pool))
            records = await read_topic(devstack.kafka, topic, 1)
    finally:
        await pool.close()
    headers = dict(records[0].headers)
    assert stored.split("-")[1] == request_trace
    assert headers["traceparent"].decode() == stored
    assert seen == [stored]
    kinds = {s.kind for s in span_exporter.get_finished_spans()}
    assert not kinds & {SpanKind.PRODUCER, SpanKind.CONSUMER}
