"""Every SQL statement of the scheduler service (asyncpg, ``$n`` parameters, typed results).

Timers are claimed with ``FOR UPDATE SKIP LOCKED``: a row another scheduler process is firing
is skipped, not waited for, and once that transaction commits the row's ``next_fire_at`` is in
the future, so no two processes fire one due instant. A change to the timers notifies
``TIMERS_CHANNEL``, so that a claimer sleeping until the next due instant wakes to look again.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from slipway_scheduler.domain.timers import Firing, Timer, TimerKind, TimerSpec

TIMERS_CHANNEL = "scheduler_timers"

_TIMER_COLUMNS = (
    "kind, target_id, organization_id, environment_id, expression, timezone, next_fire_at,"
    " last_scheduled_at, last_fired_at, last_lateness_ms"
)


@dataclass(frozen=True)
class CronJob:
    """A cron job the catalog has, in an environment it has not deleted."""

    service_id: uuid.UUID
    organization_id: uuid.UUID
    environment_id: uuid.UUID
    schedule: str
    timezone: str


@dataclass(frozen=True)
class EnvironmentJob:
    """One of an environment's cron jobs, and whether the deployer runs it."""

    service_id: uuid.UUID
    schedule: str
    timezone: str
    deployed: bool


@dataclass(frozen=True)
class Rule:
    """An environment's deployment rule, as the projection holds it."""

    environment_id: uuid.UUID
    organization_id: uuid.UUID
    auto_stop: bool
    auto_start: bool
    timezone: str
    weekdays: list[str]
    start_time: str | None
    stop_time: str | None


def _timer(row: asyncpg.Record) -> Timer:
    return Timer(
        kind=TimerKind(row["kind"]),
        target_id=row["target_id"],
        organization_id=row["organization_id"],
        environment_id=row["environment_id"],
        expression=row["expression"],
        timezone=row["timezone"],
        next_fire_at=row["next_fire_at"],
        last_scheduled_at=row["last_scheduled_at"],
        last_fired_at=row["last_fired_at"],
        last_lateness_ms=row["last_lateness_ms"],
    )


# --- the projection ----------------------------------------------------------------------------


async def project_cron_job(conn: asyncpg.Connection, state: dict[str, Any]) -> bool:
    """Write the job's state unless a newer version is there; True when written."""
    status: str = await conn.execute(
        "INSERT INTO cron_jobs (service_id, organization_id, environment_id, schedule, timezone,"
        " deleted, version) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        " ON CONFLICT (service_id) DO UPDATE SET schedule = EXCLUDED.schedule,"
        " timezone = EXCLUDED.timezone, deleted = EXCLUDED.deleted, version = EXCLUDED.version,"
        " environment_id = EXCLUDED.environment_id, updated_at = now()"
        " WHERE cron_jobs.version < EXCLUDED.version AND NOT cron_jobs.deleted",
        state["service_id"],
        state["organization_id"],
        state["environment_id"],
        state["schedule"],
        state["timezone"],
        state["deleted"],
        state["version"],
    )
    return status.endswith(" 1")


async def project_rule(conn: asyncpg.Connection, state: dict[str, Any]) -> bool:
    """Write the environment's rule unless a newer version is there; True when written."""
    status: str = await conn.execute(
        "INSERT INTO deployment_rules (environment_id, organization_id, auto_stop, auto_start,"
        " timezone, weekdays, start_time, stop_time, version)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        " ON CONFLICT (environment_id) DO UPDATE SET auto_stop = EXCLUDED.auto_stop,"
        " auto_start = EXCLUDED.auto_start, timezone = EXCLUDED.timezone,"
        " weekdays = EXCLUDED.weekdays, start_time = EXCLUDED.start_time,"
        " stop_time = EXCLUDED.stop_time, version = EXCLUDED.version, updated_at = now()"
        " WHERE deployment_rules.version < EXCLUDED.version",
        state["environment_id"],
        state["organization_id"],
        state["auto_stop"],
        state["auto_start"],
        state["timezone"],
        state["weekdays"],
        state["start_time"],
        state["stop_time"],
        state["version"],
    )
    return status.endswith(" 1")


async def lock_environment(conn: asyncpg.Connection, environment_id: uuid.UUID) -> None:
    """Until the transaction ends: one decision about an environment's timers at a time."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0))", str(environment_id)
    )


async def mark_environment_deleted(
    conn: asyncpg.Connection, environment_id: uuid.UUID, organization_id: uuid.UUID, version: int
) -> None:
    await conn.execute(
        "INSERT INTO deleted_environments (environment_id, organization_id, version)"
        " VALUES ($1, $2, $3) ON CONFLICT (environment_id) DO NOTHING",
        environment_id,
        organization_id,
        version,
    )


async def environment_deleted(conn: asyncpg.Connection, environment_id: uuid.UUID) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM deleted_environments WHERE environment_id = $1)",
            environment_id,
        )
    )


async def set_deployed(
    conn: asyncpg.Connection, service_id: uuid.UUID, organization_id: uuid.UUID, deployed: bool
) -> None:
    await conn.execute(
        "INSERT INTO deployed_services (service_id, organization_id, deployed)"
        " VALUES ($1, $2, $3) ON CONFLICT (service_id) DO UPDATE"
        " SET deployed = EXCLUDED.deployed, updated_at = now()",
        service_id,
        organization_id,
        deployed,
    )


async def is_deployed(conn: asyncpg.Connection, service_id: uuid.UUID) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT deployed FROM deployed_services WHERE service_id = $1", service_id
        )
    )


async def cron_job(conn: asyncpg.Connection, service_id: uuid.UUID) -> CronJob | None:
    """A cron job the catalog has (not deleted), in an environment it has not deleted."""
    row = await conn.fetchrow(
        "SELECT service_id, organization_id, environment_id, schedule, timezone FROM cron_jobs j"
        " WHERE service_id = $1 AND NOT deleted AND NOT EXISTS"
        " (SELECT 1 FROM deleted_environments d WHERE d.environment_id = j.environment_id)",
        service_id,
    )
    if row is None:
        return None
    return CronJob(
        service_id=row["service_id"],
        organization_id=row["organization_id"],
        environment_id=row["environment_id"],
        schedule=row["schedule"],
        timezone=row["timezone"],
    )


async def environment_cron_jobs(
    conn: asyncpg.Connection, environment_id: uuid.UUID
) -> list[EnvironmentJob]:
    rows = await conn.fetch(
        "SELECT j.service_id, j.schedule, j.timezone, coalesce(d.deployed, false) AS deployed"
        " FROM cron_jobs j LEFT JOIN deployed_services d USING (service_id)"
        " WHERE j.environment_id = $1 AND NOT j.deleted ORDER BY j.service_id",
        environment_id,
    )
    return [
        EnvironmentJob(
            service_id=r["service_id"],
            schedule=r["schedule"],
            timezone=r["timezone"],
            deployed=r["deployed"],
        )
        for r in rows
    ]


# --- timers ------------------------------------------------------------------------------------


async def timer(conn: asyncpg.Connection, kind: TimerKind, target_id: uuid.UUID) -> Timer | None:
    row = await conn.fetchrow(
        f"SELECT {_TIMER_COLUMNS} FROM timers WHERE kind = $1 AND target_id = $2",
        kind.value,
        target_id,
    )
    return None if row is None else _timer(row)


async def set_timer(conn: asyncpg.Connection, spec: TimerSpec, next_fire_at: datetime) -> None:
    """Create or re-arm the timer (a changed schedule fires next at ``next_fire_at``)."""
    await conn.execute(
        "INSERT INTO timers (kind, target_id, organization_id, environment_id, expression,"
        " timezone, next_fire_at) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        " ON CONFLICT (kind, target_id) DO UPDATE SET expression = EXCLUDED.expression,"
        " timezone = EXCLUDED.timezone, next_fire_at = EXCLUDED.next_fire_at,"
        " environment_id = EXCLUDED.environment_id, updated_at = now()",
        spec.kind.value,
        spec.target_id,
        spec.organization_id,
        spec.environment_id,
        spec.expression,
        spec.timezone,
        next_fire_at,
    )
    await notify(conn)


async def delete_timer(conn: asyncpg.Connection, kind: TimerKind, target_id: uuid.UUID) -> None:
    await conn.execute(
        "DELETE FROM timers WHERE kind = $1 AND target_id = $2", kind.value, target_id
    )


async def delete_environment_timers(conn: asyncpg.Connection, environment_id: uuid.UUID) -> None:
    await conn.execute("DELETE FROM timers WHERE environment_id = $1", environment_id)


async def claim_due(conn: asyncpg.Connection, now: datetime, limit: int) -> list[Timer]:
    """The timers due at ``now``, oldest first, locked for this transaction; rows another
    transaction holds are skipped."""
    rows = await conn.fetch(
        f"SELECT {_TIMER_COLUMNS} FROM timers WHERE next_fire_at <= $1"
        " ORDER BY next_fire_at LIMIT $2 FOR UPDATE SKIP LOCKED",
        now,
        limit,
    )
    return [_timer(r) for r in rows]


async def record_firings(
    conn: asyncpg.Connection, fired: Sequence[tuple[Timer, Firing]], fired_at: datetime
) -> None:
    """Move the fired timers to their next instants, with how they fired (one statement)."""
    if not fired:
        return
    await conn.execute(
        "UPDATE timers t SET next_fire_at = f.next_fire_at, last_scheduled_at = f.scheduled_at,"
        " last_fired_at = $6, last_lateness_ms = f.lateness_ms, fired = t.fired + 1,"
        " updated_at = now()"
        " FROM unnest($1::text[], $2::uuid[], $3::timestamptz[], $4::timestamptz[], $5::bigint[])"
        " AS f(kind, target_id, next_fire_at, scheduled_at, lateness_ms)"
        " WHERE t.kind = f.kind AND t.target_id = f.target_id",
        [t.kind.value for t, _ in fired],
        [t.target_id for t, _ in fired],
        [f.next_fire_at for _, f in fired],
        [f.scheduled_at for _, f in fired],
        [int(f.lateness.total_seconds() * 1000) for _, f in fired],
        fired_at,
    )


async def move_timer(conn: asyncpg.Connection, claimed: Timer, next_fire_at: datetime) -> None:
    """Move a timer to its next instant without firing it (its firing was superseded)."""
    await conn.execute(
        "UPDATE timers SET next_fire_at = $3, updated_at = now()"
        " WHERE kind = $1 AND target_id = $2",
        claimed.kind.value,
        claimed.target_id,
        next_fire_at,
    )


async def next_due(conn: asyncpg.Connection) -> datetime | None:
    """The earliest instant any timer fires."""
    due: datetime | None = await conn.fetchval("SELECT min(next_fire_at) FROM timers")
    return due


async def environment_timers(conn: asyncpg.Connection, environment_id: uuid.UUID) -> list[Timer]:
    rows = await conn.fetch(
        f"SELECT {_TIMER_COLUMNS} FROM timers WHERE environment_id = $1 ORDER BY kind, target_id",
        environment_id,
    )
    return [_timer(r) for r in rows]


async def rule(conn: asyncpg.Connection, environment_id: uuid.UUID) -> Rule | None:
    row = await conn.fetchrow(
        "SELECT environment_id, organization_id, auto_stop, auto_start, timezone, weekdays,"
        " start_time, stop_time FROM deployment_rules WHERE environment_id = $1",
        environment_id,
    )
    if row is None:
        return None
    return Rule(
        environment_id=row["environment_id"],
        organization_id=row["organization_id"],
        auto_stop=row["auto_stop"],
        auto_start=row["auto_start"],
        timezone=row["timezone"],
        weekdays=list(row["weekdays"]),
        start_time=row["start_time"],
        stop_time=row["stop_time"],
    )


async def notify(conn: asyncpg.Connection) -> None:
    await conn.execute("SELECT pg_notify($1, '')", TIMERS_CHANNEL)
