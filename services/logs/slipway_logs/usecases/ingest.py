"""Storing a batch of ``LogLinesAppended`` events in the inbox's transaction.

Invariants (the follow side relies on them):
- Cursors are given under each stream's counter row lock, held until the batch commits: a
  stream's lines commit in cursor order, so a reader that saw cursor ``c`` committed will never
  later see a line below ``c`` appear.
- Within a stream, the order of the events (Kafka's order for their key) and of their lines is
  the order of the cursors.
- Every stored line lies in one search chunk of the same transaction (``q`` finds lines
  only through their chunks).
- A notification per stream goes out with the commit, never before it and never for a batch
  that rolled back. Redelivered events never get here twice (the inbox claims them first).
"""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import structlog
from pydantic import ValidationError

from slipway_contracts import Envelope
from slipway_contracts.events.logs import LogLinesAppended
from slipway_libs.errors import PermanentError
from slipway_logs.db import queries
from slipway_logs.domain import lines as domain

log = structlog.get_logger(__name__)


async def append(conn: asyncpg.Connection, envelopes: list[Envelope]) -> None:
    appends = [_append(envelope) for envelope in envelopes]
    growth = domain.growth(appends)
    if not growth:
        return
    await queries.ensure_partition(conn)
    heads = await queries.advance_cursors(conn, growth)
    rows = domain.rows(appends, heads)
    await queries.insert_lines(conn, rows)
    await queries.insert_chunks(conn, domain.chunks(rows))
    await queries.notify(conn, growth, heads)
    newest = max(line.at for append in appends for line in append.lines)
    # ingest lag: how old the newest line of the batch is when it is stored
    log.info(
        "logs.ingested",
        streams=len(growth),
        lines=sum(g.lines for g in growth),
        lag_ms=round((datetime.now(UTC) - newest).total_seconds() * 1000),
    )


def _append(envelope: Envelope) -> domain.Append:
    """The event's lines and stream; an event that names none can never be stored."""
    try:
        payload = LogLinesAppended.model_validate(envelope.data)
        stream_kind, stream_id = domain.stream_of(
            payload.kind,
            deployment_id=payload.deployment_id,
            build_id=payload.build_id,
            service_id=payload.service_id,
        )
    except (ValidationError, domain.NoStream) as exc:
        raise PermanentError(f"unusable log lines: {exc}") from exc
    if envelope.organization_id is None:
        raise PermanentError("log lines without an organization")
    return domain.Append(
        stream_kind=stream_kind,
        stream_id=stream_id,
        organization_id=envelope.organization_id,
        environment_id=payload.environment_id,
        kind=payload.kind,
        service_id=payload.service_id,
        build_id=payload.build_id,
        lines=[domain.IncomingLine(at=x.at, stream=x.stream, text=x.text) for x in payload.lines],
    )
