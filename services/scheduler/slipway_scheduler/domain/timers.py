"""Durable timers: what fires, when, and what a firing does to the timer.

Pure. A timer is one row per ``(kind, target)``: a cron job's schedule (``cron``) or one side of
an environment's deployment rule (``env_stop``, ``env_start``), with the instant it fires next.

Invariants:
- A timer fires at most once per claim, for the instant it was due (``scheduled_at``). However
  many periods passed while the scheduler was down, it fires once and its next instant is the
  first one after *now* (``fire``): a missed period is recorded as lateness, never replayed.
- A deployment rule's side acts for the *last* instant it missed, and not at all when the other
  side's last instant (fired or missed) is later (``superseded``): back after a weekend, an
  environment due to stop Friday and start Monday is started, never stopped then started.
- A schedule changed or removed takes effect at once: the next instant is computed again from
  now (``arm``), so the old schedule never fires once more.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from slipway_scheduler.domain.cron import Schedule, weekly


class Clock(Protocol):
    """What time it is: the system's in production, a hand-driven one in tests."""

    def now(self) -> datetime: ...


class TimerKind(StrEnum):
    CRON = "cron"
    ENV_STOP = "env_stop"
    ENV_START = "env_start"

    @property
    def sibling(self) -> TimerKind | None:
        """The other side of a deployment rule."""
        if self is TimerKind.ENV_STOP:
            return TimerKind.ENV_START
        if self is TimerKind.ENV_START:
            return TimerKind.ENV_STOP
        return None


@dataclass(frozen=True, kw_only=True)
class Firing:
    """One firing of a due timer: the instant it was due, how late it fired, and the instant it
    fires next."""

    scheduled_at: datetime
    lateness: timedelta
    next_fire_at: datetime


def arm(schedule: Schedule, now: datetime) -> datetime:
    """The first instant a new (or changed) schedule fires: strictly after now."""
    return schedule.next_after(now)


def fire(schedule: Schedule, due_at: datetime, now: datetime) -> Firing:
    """Fire a timer due at ``due_at`` (``due_at <= now``) once; the periods between ``due_at``
    and now are skipped."""
    if due_at > now:
        raise ValueError("a timer fires only once it is due")
    return Firing(scheduled_at=due_at, lateness=now - due_at, next_fire_at=schedule.next_after(now))


def latest_due(
    schedule: Schedule, due_at: datetime, now: datetime, *, limit: int = 1000
) -> datetime:
    """The last instant at or before ``now`` of a timer due since ``due_at``: what a deployment
    rule's side last asked for while the scheduler was down (``limit`` instants at most)."""
    latest = due_at
    for _ in range(limit):
        following = schedule.next_after(latest)
        if following > now:
            break
        latest = following
    return latest


def superseded(latest: datetime, sibling_latest: datetime | None) -> bool:
    """A rule's side whose last due instant came before the other side's (fired, or due too) is
    out of date: after a down period, a stop due Friday is not sent when the start due Monday is
    the later of the two, and the environment is only started."""
    return sibling_latest is not None and sibling_latest > latest


@dataclass(frozen=True, kw_only=True)
class TimerSpec:
    """What a timer should be, as the projection sees it (the schedule as text, evaluated by
    ``cron.parse``)."""

    kind: TimerKind
    target_id: uuid.UUID
    organization_id: uuid.UUID
    environment_id: uuid.UUID
    expression: str
    timezone: str


def rule_timers(
    *,
    environment_id: uuid.UUID,
    organization_id: uuid.UUID,
    auto_stop: bool,
    auto_start: bool,
    weekdays: list[str],
    start_time: str | None,
    stop_time: str | None,
    timezone: str,
) -> dict[TimerKind, TimerSpec | None]:
    """The two timers of an environment's deployment rule (None: that side is off)."""

    def side(kind: TimerKind, on: bool, at: str | None) -> TimerSpec | None:
        if not on or at is None or not weekdays:
            return None
        return TimerSpec(
            kind=kind,
            target_id=environment_id,
            organization_id=organization_id,
            environment_id=environment_id,
            expression=weekly(weekdays, at),
            timezone=timezone,
        )

    return {
        TimerKind.ENV_STOP: side(TimerKind.ENV_STOP, auto_stop, stop_time),
        TimerKind.ENV_START: side(TimerKind.ENV_START, auto_start, start_time),
    }


@dataclass(frozen=True, kw_only=True)
class Timer(TimerSpec):
    """A timer as stored: its spec, the instant it fires next and how it last fired."""

    next_fire_at: datetime
    last_scheduled_at: datetime | None = None
    last_fired_at: datetime | None = None
    last_lateness_ms: int | None = None
