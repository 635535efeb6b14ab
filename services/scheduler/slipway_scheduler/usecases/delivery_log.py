"""A webhook's delivery log through the API: its deliveries, newest first, each with every
attempt (the request's body and signature, the answer's code and start, how long it took,
why it failed, when the next one is due), and the redeliver action (a new attempt now)."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import Any

import asyncpg

from slipway_libs.errors import InvalidInput, Missing
from slipway_scheduler.db import delivery_queries as queries
from slipway_scheduler.db import webhook_queries
from slipway_scheduler.domain.timers import Clock

MAX_PAGE = 100


async def page(
    conn: asyncpg.Connection,
    organization_id: uuid.UUID,
    webhook_id: uuid.UUID,
    *,
    cursor: str | None,
    limit: int,
) -> dict[str, Any]:
    """``{"items": [...], "next_cursor": ...}``: at most ``limit`` deliveries older than the
    cursor's."""
    await _ensure_webhook(conn, organization_id, webhook_id)
    limit = max(1, min(limit, MAX_PAGE))
    rows = await queries.deliveries(
        conn,
        organization_id,
        webhook_id,
        before=decode_cursor(cursor) if cursor else None,
        limit=limit + 1,
    )
    shown = rows[:limit]
    attempts = await queries.attempts(conn, [row.delivery_id for row in shown])
    next_cursor = encode_cursor(shown[-1]) if len(rows) > limit else None
    return {"items": [view(row, attempts) for row in shown], "next_cursor": next_cursor}


async def redeliver(
    conn: asyncpg.Connection,
    clock: Clock,
    organization_id: uuid.UUID,
    webhook_id: uuid.UUID,
    delivery_id: uuid.UUID,
) -> dict[str, Any]:
    """The delivery, due now again (a delivery being sent is sent once more afterwards)."""
    await _ensure_webhook(conn, organization_id, webhook_id)
    row = await queries.redeliver(conn, organization_id, webhook_id, delivery_id, clock.now())
    if row is None:
        raise Missing("DELIVERY_NOT_FOUND", "No such delivery of this webhook.")
    return view(row, await queries.attempts(conn, [row.delivery_id]))


async def _ensure_webhook(
    conn: asyncpg.Connection, organization_id: uuid.UUID, webhook_id: uuid.UUID
) -> None:
    if await webhook_queries.webhook(conn, organization_id, webhook_id) is None:
        raise Missing("WEBHOOK_NOT_FOUND", "No such webhook.")


def view(delivery: queries.Delivery, attempts: list[queries.Attempt]) -> dict[str, Any]:
    return {
        "id": str(delivery.delivery_id),
        "webhook_id": str(delivery.webhook_id),
        "event": delivery.event,
        "event_id": str(delivery.event_id),
        "status": delivery.status,
        "attempts": delivery.attempts,
        "last_response_code": delivery.last_response_code,
        "next_attempt_at": _iso(delivery.next_attempt_at),
        "created_at": delivery.created_at.isoformat(),
        "request": {"body": delivery.body},
        "attempt_log": [
            _attempt_view(a) for a in attempts if a.delivery_id == delivery.delivery_id
        ],
    }


def _attempt_view(attempt: queries.Attempt) -> dict[str, Any]:
    return {
        "number": attempt.number,
        "attempted_at": attempt.attempted_at.isoformat(),
        "signature": attempt.signature,
        "response_code": attempt.response_code,
        "response_body": attempt.response_body,
        "duration_ms": attempt.duration_ms,
        "error": attempt.error,
        "next_attempt_at": _iso(attempt.next_attempt_at),
    }


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def encode_cursor(delivery: queries.Delivery) -> str:
    raw = f"{delivery.created_at.isoformat()}|{delivery.delivery_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        at, _, delivery_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        parsed = datetime.fromisoformat(at)
        if parsed.tzinfo is None:
            raise ValueError("no zone")
        return parsed, uuid.UUID(delivery_id)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("INVALID_CURSOR", "This cursor is not valid.", field="cursor") from None
