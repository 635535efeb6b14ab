"""Firing due timers: in one transaction, claim a batch of due timers (``FOR UPDATE SKIP
LOCKED``), write each one's command to the outbox and move it to its next instant.

Any number of scheduler processes may run this at once, with no leader: a timer another
transaction holds is skipped, and once that transaction commits the timer is no longer due.
A batch costs a few statements whatever its size: the claim, one outbox insert, one update. A
crash before the commit rolls back the commands with the claims, so the timers fire again in
the next round; after it, both are durable. Either way, once per due instant.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import asyncpg
import structlog

from slipway_contracts import Envelope, EventPayload, new_event
from slipway_contracts.events import scheduler as commands
from slipway_libs import outbox
from slipway_scheduler.db import queries as q
from slipway_scheduler.domain import cron, timers
from slipway_scheduler.domain.timers import Clock, Firing, Timer, TimerKind

log = structlog.get_logger(__name__)
SOURCE = "scheduler"
# notified when a timer is armed or re-armed: a sleeping loop looks again
TIMERS_CHANNEL = q.TIMERS_CHANNEL


async def fire_due(conn: asyncpg.Connection, clock: Clock, *, limit: int) -> int:
    """One round, inside the caller's transaction: how many timers it claimed. The batch's
    commands go to the outbox in one statement and its timers move in another."""
    now = clock.now()
    claimed = await q.claim_due(conn, now, limit)
    fired: list[tuple[Timer, Firing]] = []
    for timer in claimed:
        firing = await _firing(conn, timer, now)
        if firing is not None:
            fired.append((timer, firing))
    await outbox.append(conn, [_command_event(timer, firing) for timer, firing in fired])
    await q.record_firings(conn, fired, now)
    if fired:
        log.info(
            "timers.fired",
            count=len(fired),
            max_lateness_ms=max(_ms(f.lateness) for _, f in fired),
            superseded=len(claimed) - len(fired),
        )
    return len(claimed)


async def next_due(conn: asyncpg.Connection) -> datetime | None:
    return await q.next_due(conn)


async def _firing(conn: asyncpg.Connection, timer: Timer, now: datetime) -> Firing | None:
    """How a due timer fires; None: it does not (it is moved or removed here)."""
    try:
        schedule = cron.parse(timer.expression, timer.timezone)
    except cron.InvalidSchedule:
        log.warning("timers.unreadable_schedule", target_id=str(timer.target_id))
        await q.delete_timer(conn, timer.kind, timer.target_id)
        return None
    firing = timers.fire(schedule, timer.next_fire_at, now)
    if timer.kind.sibling is not None:
        # a rule acts for the last instant it missed, and not at all when the other side's
        # last instant is later
        latest = timers.latest_due(schedule, timer.next_fire_at, now)
        firing = replace(firing, scheduled_at=latest, lateness=now - latest)
        if timers.superseded(latest, await _sibling_latest(conn, timer, now)):
            await q.move_timer(conn, timer, firing.next_fire_at)
            log.info("timers.superseded", kind=timer.kind.value, target_id=str(timer.target_id))
            return None
    log.debug(
        "timers.firing",
        kind=timer.kind.value,
        target_id=str(timer.target_id),
        scheduled_at=firing.scheduled_at.isoformat(),
        lateness_ms=_ms(firing.lateness),
        next_fire_at=firing.next_fire_at.isoformat(),
    )
    return firing


def _command_event(timer: Timer, firing: Firing) -> tuple[str, Envelope]:
    payload = command(timer, firing.scheduled_at)
    envelope = new_event(
        payload,
        subject=str(timer.environment_id),  # one environment's commands stay in order
        source=SOURCE,
        organization_id=timer.organization_id,
    )
    return payload.topic, envelope


def _ms(delta: timedelta) -> int:
    return int(delta.total_seconds() * 1000)


async def _sibling_latest(conn: asyncpg.Connection, timer: Timer, now: datetime) -> datetime | None:
    """The last instant the other side of the rule fired for, or is due for now."""
    assert timer.kind.sibling is not None
    sibling = await q.timer(conn, timer.kind.sibling, timer.target_id)
    if sibling is None:
        return None
    latest = sibling.last_scheduled_at
    if sibling.next_fire_at <= now:
        schedule = cron.parse(sibling.expression, sibling.timezone)
        due = timers.latest_due(schedule, sibling.next_fire_at, now)
        latest = due if latest is None else max(latest, due)
    return latest


def command(timer: Timer, scheduled_at: datetime) -> EventPayload:
    """The command a timer's firing sends."""
    if timer.kind is TimerKind.CRON:
        return commands.JobRunRequested(
            service_id=timer.target_id,
            organization_id=timer.organization_id,
            environment_id=timer.environment_id,
            scheduled_at=scheduled_at,
        )
    return commands.EnvironmentActionRequested(
        environment_id=timer.environment_id,
        organization_id=timer.organization_id,
        action="stop" if timer.kind is TimerKind.ENV_STOP else "deploy",
        scheduled_at=scheduled_at,
    )
