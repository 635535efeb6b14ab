"""SQL of the webhook deliveries and of the projection they are filtered on (row-level
security scopes every statement to the acting organization; the consumer's and the delivery
loop's own work sees every row). Answers are typed records, never driver rows.

Due deliveries are claimed with ``FOR UPDATE SKIP LOCKED`` and leased in the same statement
(``next_attempt_at`` moved past the attempt's longest duration), so that the sending happens
outside any transaction and another process takes the row again only if this one died.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

DELIVERIES_CHANNEL = "scheduler_webhook_deliveries"


@dataclass(frozen=True)
class EnvironmentFacts:
    project_id: uuid.UUID
    project_name: str | None
    environment_name: str
    mode: str


@dataclass(frozen=True)
class Subscription:
    webhook_id: uuid.UUID
    events: list[str]
    project_pattern: str | None
    environment_modes: list[str]
    format: str


@dataclass(frozen=True)
class NewDelivery:
    delivery_id: uuid.UUID
    webhook_id: uuid.UUID
    organization_id: uuid.UUID
    event_id: uuid.UUID
    event: str
    body: str


@dataclass(frozen=True)
class DueDelivery:
    delivery_id: uuid.UUID
    webhook_id: uuid.UUID
    organization_id: uuid.UUID
    url: str
    secret_sealed: bytes
    event: str
    body: str
    attempts: int
    failures: int
    retry_from: datetime
    leased_until: datetime  # the claim's mark: the state is this process's while it is there


@dataclass(frozen=True)
class Delivery:
    delivery_id: uuid.UUID
    webhook_id: uuid.UUID
    event_id: uuid.UUID
    event: str
    body: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_response_code: int | None
    created_at: datetime


@dataclass(frozen=True)
class Attempt:
    delivery_id: uuid.UUID
    number: int
    attempted_at: datetime
    signature: str
    response_code: int | None
    response_body: str | None
    duration_ms: int
    error: str | None
    next_attempt_at: datetime | None


@dataclass(frozen=True)
class AttemptOutcome:
    """What to write after an attempt: its row, and the delivery's new state."""

    attempt: Attempt
    organization_id: uuid.UUID
    status: str
    failures: int
    leased_until: datetime


# --- the projection ----------------------------------------------------------------------------


async def project_project(
    conn: asyncpg.Connection,
    *,
    project_id: uuid.UUID,
    organization_id: uuid.UUID,
    name: str,
    version: int,
) -> None:
    """The project's name, unless a newer version is there."""
    await conn.execute(
        "INSERT INTO projects (project_id, organization_id, name, version)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT (project_id) DO UPDATE"
        " SET name = EXCLUDED.name, version = EXCLUDED.version"
        " WHERE projects.version < EXCLUDED.version",
        project_id,
        organization_id,
        name,
        version,
    )


async def project_environment(
    conn: asyncpg.Connection,
    *,
    environment_id: uuid.UUID,
    organization_id: uuid.UUID,
    project_id: uuid.UUID,
    name: str,
    mode: str,
    version: int,
) -> None:
    """The environment's name, mode and project, unless a newer version is there."""
    await conn.execute(
        "INSERT INTO environments (environment_id, organization_id, project_id, name, mode,"
        " version) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (environment_id) DO UPDATE"
        " SET name = EXCLUDED.name, mode = EXCLUDED.mode, project_id = EXCLUDED.project_id,"
        " version = EXCLUDED.version WHERE environments.version < EXCLUDED.version",
        environment_id,
        organization_id,
        project_id,
        name,
        mode,
        version,
    )


async def environment_facts(
    conn: asyncpg.Connection, environment_id: uuid.UUID
) -> EnvironmentFacts | None:
    row = await conn.fetchrow(
        "SELECT e.project_id, p.name AS project_name, e.name, e.mode FROM environments e"
        " LEFT JOIN projects p USING (project_id) WHERE e.environment_id = $1",
        environment_id,
    )
    if row is None:
        return None
    return EnvironmentFacts(
        project_id=row["project_id"],
        project_name=row["project_name"],
        environment_name=row["name"],
        mode=row["mode"],
    )


# --- writing deliveries ------------------------------------------------------------------------


async def subscriptions(
    conn: asyncpg.Connection, organization_id: uuid.UUID, event: str
) -> list[Subscription]:
    """The organization's webhooks subscribed to ``event`` (their filters still to apply)."""
    rows = await conn.fetch(
        "SELECT id, events, project_pattern, environment_modes, format FROM webhooks"
        " WHERE organization_id = $1 AND $2 = ANY (events) ORDER BY id",
        organization_id,
        event,
    )
    return [
        Subscription(
            webhook_id=r["id"],
            events=list(r["events"]),
            project_pattern=r["project_pattern"],
            environment_modes=list(r["environment_modes"]),
            format=r["format"],
        )
        for r in rows
    ]


async def insert_deliveries(
    conn: asyncpg.Connection, deliveries: Sequence[NewDelivery], now: datetime
) -> None:
    """Pending deliveries, due at once; one already written for (webhook, event) is kept."""
    if not deliveries:
        return
    await conn.execute(
        "INSERT INTO webhook_deliveries (id, webhook_id, organization_id, event_id, event, body,"
        " retry_from, next_attempt_at, created_at)"
        " SELECT d.*, $7::timestamptz, $7::timestamptz, $7::timestamptz"
        " FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::text[])"
        " AS d ON CONFLICT (webhook_id, event_id) DO NOTHING",
        [d.delivery_id for d in deliveries],
        [d.webhook_id for d in deliveries],
        [d.organization_id for d in deliveries],
        [d.event_id for d in deliveries],
        [d.event for d in deliveries],
        [d.body for d in deliveries],
        now,
    )
    await notify(conn)


async def notify(conn: asyncpg.Connection) -> None:
    await conn.execute("SELECT pg_notify($1, '')", DELIVERIES_CHANNEL)


# --- the delivery loop -------------------------------------------------------------------------


async def claim_due(
    conn: asyncpg.Connection, now: datetime, *, limit: int, lease_until: datetime
) -> list[DueDelivery]:
    """The pending deliveries due at ``now``, oldest first, leased until ``lease_until``; rows
    another transaction holds are skipped."""
    rows = await conn.fetch(
        "WITH due AS (SELECT id FROM webhook_deliveries WHERE status = 'PENDING'"
        " AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED)"
        " UPDATE webhook_deliveries d SET next_attempt_at = $3, updated_at = now()"
        " FROM due, webhooks w WHERE d.id = due.id AND w.id = d.webhook_id"
        " RETURNING d.id, d.webhook_id, d.organization_id, w.url, w.secret_sealed, d.event, d.body,"
        " d.attempts, d.failures, d.retry_from, d.next_attempt_at",
        now,
        limit,
        lease_until,
    )
    return [
        DueDelivery(
            delivery_id=r["id"],
            webhook_id=r["webhook_id"],
            organization_id=r["organization_id"],
            url=r["url"],
            secret_sealed=bytes(r["secret_sealed"]),
            event=r["event"],
            body=r["body"],
            attempts=r["attempts"],
            failures=r["failures"],
            retry_from=r["retry_from"],
            leased_until=r["next_attempt_at"],
        )
        for r in rows
    ]


async def record_attempt(conn: asyncpg.Connection, outcome: AttemptOutcome) -> None:
    """The attempt's row, and the delivery's state after it unless the delivery changed hands
    meanwhile (a redeliver, or a lease that ran out and another claim): then that one decides
    what comes next. A delivery gone with its webhook records nothing."""
    attempt = outcome.attempt
    number = await conn.fetchval(
        "UPDATE webhook_deliveries SET attempts = attempts + 1, last_response_code = $5,"
        " status = CASE WHEN next_attempt_at = $6 THEN $2 ELSE status END,"
        " failures = CASE WHEN next_attempt_at = $6 THEN $3 ELSE failures END,"
        " next_attempt_at = CASE WHEN next_attempt_at = $6 THEN $4 ELSE next_attempt_at END,"
        " updated_at = now() WHERE id = $1 RETURNING attempts",
        attempt.delivery_id,
        outcome.status,
        outcome.failures,
        attempt.next_attempt_at,
        attempt.response_code,
        outcome.leased_until,
    )
    if number is None:
        return
    await conn.execute(
        "INSERT INTO webhook_attempts (delivery_id, organization_id, number, attempted_at,"
        " signature, response_code, response_body, duration_ms, error, next_attempt_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        attempt.delivery_id,
        outcome.organization_id,
        number,
        attempt.attempted_at,
        attempt.signature,
        attempt.response_code,
        attempt.response_body,
        attempt.duration_ms,
        attempt.error,
        attempt.next_attempt_at,
    )


async def next_due(conn: asyncpg.Connection) -> datetime | None:
    due: datetime | None = await conn.fetchval(
        "SELECT min(next_attempt_at) FROM webhook_deliveries WHERE status = 'PENDING'"
    )
    return due


# --- the delivery log (API) --------------------------------------------------------------------

_DELIVERY_COLUMNS = (
    "id, webhook_id, event_id, event, body, status, attempts, next_attempt_at,"
    " last_response_code, created_at"
)


def _delivery(row: asyncpg.Record) -> Delivery:
    return Delivery(
        delivery_id=row["id"],
        webhook_id=row["webhook_id"],
        event_id=row["event_id"],
        event=row["event"],
        body=row["body"],
        status=row["status"],
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        last_response_code=row["last_response_code"],
        created_at=row["created_at"],
    )


async def deliveries(
    conn: asyncpg.Connection,
    organization_id: uuid.UUID,
    webhook_id: uuid.UUID,
    *,
    before: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Delivery]:
    """The webhook's deliveries, newest first, older than ``before`` when given."""
    rows = await conn.fetch(
        f"SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries"
        " WHERE organization_id = $1 AND webhook_id = $2"
        " AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4::uuid))"
        " ORDER BY created_at DESC, id DESC LIMIT $5",
        organization_id,
        webhook_id,
        None if before is None else before[0],
        None if before is None else before[1],
        limit,
    )
    return [_delivery(r) for r in rows]


async def attempts(conn: asyncpg.Connection, delivery_ids: Sequence[uuid.UUID]) -> list[Attempt]:
    rows = await conn.fetch(
        "SELECT delivery_id, number, attempted_at, signature, response_code, response_body,"
        " duration_ms, error, next_attempt_at FROM webhook_attempts"
        " WHERE delivery_id = ANY ($1::uuid[]) ORDER BY delivery_id, number",
        list(delivery_ids),
    )
    return [
        Attempt(
            delivery_id=r["delivery_id"],
            number=r["number"],
            attempted_at=r["attempted_at"],
            signature=r["signature"],
            response_code=r["response_code"],
            response_body=r["response_body"],
            duration_ms=r["duration_ms"],
            error=r["error"],
            next_attempt_at=r["next_attempt_at"],
        )
        for r in rows
    ]


async def redeliver(
    conn: asyncpg.Connection,
    organization_id: uuid.UUID,
    webhook_id: uuid.UUID,
    delivery_id: uuid.UUID,
    now: datetime,
) -> Delivery | None:
    """Due now, pending again, with a fresh retry window (None: no such delivery)."""
    row = await conn.fetchrow(
        "UPDATE webhook_deliveries SET status = 'PENDING', next_attempt_at = $4, retry_from = $4,"
        " failures = 0, updated_at = now()"
        " WHERE organization_id = $1 AND webhook_id = $2 AND id = $3"
        f" RETURNING {_DELIVERY_COLUMNS}",
        organization_id,
        webhook_id,
        delivery_id,
        now,
    )
    if row is None:
        return None
    await notify(conn)
    return _delivery(row)
