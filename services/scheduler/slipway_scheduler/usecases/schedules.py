"""What an environment's timers will do next (``GET /environments/{id}/schedule``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

from slipway_scheduler.db import queries as q
from slipway_scheduler.domain.timers import Timer, TimerKind


async def environment_schedule(
    conn: asyncpg.Connection, environment_id: uuid.UUID
) -> dict[str, Any]:
    """The next start and stop of the environment's rule and the next run of each of its cron
    jobs (none while a job is not deployed). An environment the scheduler knows nothing of has
    nothing scheduled (the gateway has checked that it exists and that the caller may read
    it)."""
    rule = await q.rule(conn, environment_id)
    by_kind: dict[TimerKind, list[Timer]] = {kind: [] for kind in TimerKind}
    for timer in await q.environment_timers(conn, environment_id):
        by_kind[timer.kind].append(timer)
    stop = by_kind[TimerKind.ENV_STOP][0] if by_kind[TimerKind.ENV_STOP] else None
    start = by_kind[TimerKind.ENV_START][0] if by_kind[TimerKind.ENV_START] else None
    timers = {t.target_id: t for t in by_kind[TimerKind.CRON]}
    return {
        "environment_id": str(environment_id),
        "auto_stop": bool(rule and rule.auto_stop),
        "auto_start": bool(rule and rule.auto_start),
        "timezone": rule.timezone if rule else None,
        "weekdays": list(rule.weekdays) if rule else [],
        "next_stop_at": _iso(stop.next_fire_at if stop else None),
        "next_start_at": _iso(start.next_fire_at if start else None),
        "last_stop_at": _iso(stop.last_scheduled_at if stop else None),
        "last_start_at": _iso(start.last_scheduled_at if start else None),
        "jobs": [
            _job(job, timers.get(job.service_id))
            for job in await q.environment_cron_jobs(conn, environment_id)
        ],
    }


def _job(job: q.EnvironmentJob, timer: Timer | None) -> dict[str, Any]:
    """A cron job's schedule; a job the deployer does not run (not deployed) has no next run."""
    return {
        "service_id": str(job.service_id),
        "schedule": job.schedule,
        "timezone": job.timezone,
        "deployed": job.deployed,
        "next_run_at": _iso(timer.next_fire_at if timer else None),
        "last_scheduled_at": _iso(timer.last_scheduled_at if timer else None),
        "last_fired_at": _iso(timer.last_fired_at if timer else None),
        "last_lateness_ms": timer.last_lateness_ms if timer else None,
    }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
