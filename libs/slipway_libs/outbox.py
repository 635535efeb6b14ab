"""Writing events to the transactional outbox.

Call these inside the use case's transaction: the events become visible to the relay exactly when
the state change commits, and vanish with it on rollback. No other code path publishes events.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import asyncpg

from slipway_contracts import Envelope, EventPayload, new_event
from slipway_libs import changes
from slipway_libs.logging import correlation_id
from slipway_libs.telemetry import current_carrier, tracer

NOTIFY_CHANNEL = "slipway_outbox"

# the relay is woken in the same round trip (a data-modifying CTE runs whether or not it is read)
_INSERT = """
WITH written AS (
    INSERT INTO outbox (topic, key, event_id, event_type, payload, headers)
    SELECT * FROM unnest($1::text[], $2::text[], $3::uuid[], $4::text[], $5::text[], $6::jsonb[])
)
SELECT pg_notify($7, '')
"""


async def append(conn: asyncpg.Connection, items: Sequence[tuple[str, Envelope]]) -> None:
    """Write ``(topic, envelope)`` pairs; the key is the envelope's subject."""
    if not items:
        return
    with tracer().start_as_current_span(
        "outbox append",
        attributes={"slipway.events": len(items), "slipway.event_type": items[0][1].type},
    ):
        headers = current_carrier()
        await _insert(conn, items, headers)


async def _insert(
    conn: asyncpg.Connection, items: Sequence[tuple[str, Envelope]], headers: dict[str, str]
) -> None:
    await conn.execute(
        _INSERT,
        [topic for topic, _ in items],
        [env.subject for _, env in items],
        [env.id for _, env in items],
        [env.type for _, env in items],
        [env.model_dump_json() for _, env in items],
        [headers] * len(items),
        NOTIFY_CHANNEL,
    )


async def publish(
    conn: asyncpg.Connection,
    payload: EventPayload,
    *,
    subject: str,
    source: str,
    organization_id: uuid.UUID | None = None,
    causation_id: str | None = None,
    announce: bool = False,
) -> Envelope:
    """Wrap ``payload`` in an envelope (correlation id from the current request) and write it."""
    envelope = new_event(
        payload,
        subject=subject,
        source=source,
        organization_id=organization_id,
        correlation_id=correlation_id.get(),
        causation_id=causation_id,
    )
    await append(conn, [(payload.topic, envelope)])
    if announce:  # full-state events the caller's gateway applies at once (read-your-writes)
        changes.announce(envelope.type, envelope.data)
    return envelope
