"""The organization's audit log: stored from every service's audit events, read with filters."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import Any

import asyncpg

from slipway_contracts import Envelope
from slipway_identity.db import queries as q
from slipway_identity.domain.read_models import AuditEvent
from slipway_libs.errors import InvalidInput, PermanentError


async def store(conn: asyncpg.Connection, envelope: Envelope) -> None:
    """Inbox handler for ``<producer>.AuditRecorded``; the event id is the record id."""
    if not envelope.type.endswith(".AuditRecorded"):
        raise PermanentError(f"not an audit record: {envelope.type}")
    await q.insert_audit_event(
        conn, event_id=envelope.id, source=envelope.source, data=_typed(envelope.data)
    )


def _typed(data: dict[str, Any]) -> dict[str, Any]:
    out = dict(data)
    out["organization_id"] = uuid.UUID(str(data["organization_id"]))
    out["occurred_at"] = datetime.fromisoformat(str(data["occurred_at"]))
    for key in ("project_id", "environment_id"):
        out[key] = uuid.UUID(str(data[key])) if data.get(key) else None
    return out


def encode_cursor(event: AuditEvent) -> str:
    raw = f"{event.occurred_at.isoformat()}|{event.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        at, _, eid = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        return datetime.fromisoformat(at), uuid.UUID(eid)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("INVALID_CURSOR", "This cursor is not valid.", field="cursor") from None


async def page(
    conn: asyncpg.Connection,
    org_id: uuid.UUID,
    *,
    filters: dict[str, Any],
    cursor: str | None,
    limit: int,
) -> tuple[list[AuditEvent], str | None]:
    after = decode_cursor(cursor) if cursor else None
    rows = await q.audit_events(conn, org_id, filters=filters, after=after, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1]) if more and rows else None
