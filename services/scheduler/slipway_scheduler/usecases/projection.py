"""The scheduler's projection of the catalog, and the timers it arms.

Handlers run in the inbox transaction of the ``scheduler.catalog`` consumer group. Each event
carries an entity's whole state and version; a row is replaced only by a newer version, and a
timer is (re)armed only when the projected row changed, so redeliveries change nothing:
- a cron job (a service of kind ``cronjob``, deployed or not: the deployer records a run of a
  job it has not deployed as SKIPPED, so the user sees the schedule working) gets a ``cron``
  timer; its schedule or zone changed re-arms it from now; its tombstone deletes it;
- a deployment rule gets an ``env_stop`` and an ``env_start`` timer for the sides it turns on;
- an environment's tombstone deletes every timer of the environment, and events that arrive
  after it for that environment arm nothing.
"""

from __future__ import annotations

import asyncpg
import structlog

from slipway_contracts import REGISTRY, Envelope
from slipway_contracts.events import catalog as ev
from slipway_scheduler.db import queries as q
from slipway_scheduler.domain import cron, timers
from slipway_scheduler.domain.timers import Clock, TimerKind, TimerSpec

log = structlog.get_logger(__name__)

EVENT_TYPES = (
    ev.ServiceChanged.event_type,
    ev.DeploymentRuleChanged.event_type,
    ev.EnvironmentChanged.event_type,
)


class Projection:
    """The consumer's handler; ``clock`` says from when a (re)armed timer counts."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    async def apply(self, conn: asyncpg.Connection, envelope: Envelope) -> None:
        event = REGISTRY.parse(envelope)
        if isinstance(event, ev.ServiceChanged):
            await self._service(conn, event)
        elif isinstance(event, ev.DeploymentRuleChanged):
            await self._rule(conn, event)
        elif isinstance(event, ev.EnvironmentChanged) and event.deleted:
            await q.mark_environment_deleted(
                conn, event.environment_id, event.organization_id, event.version
            )
            await q.delete_environment_timers(conn, event.environment_id)

    async def _service(self, conn: asyncpg.Connection, event: ev.ServiceChanged) -> None:
        if event.kind != "cronjob":
            return
        written = await q.project_cron_job(
            conn,
            {
                "service_id": event.service_id,
                "organization_id": event.organization_id,
                "environment_id": event.environment_id,
                "schedule": str(event.spec.get("schedule", "")),
                "timezone": str(event.spec.get("timezone") or "UTC"),
                "deleted": event.deleted,
                "version": event.version,
            },
        )
        if not written:
            return
        if event.deleted or await q.environment_deleted(conn, event.environment_id):
            await q.delete_timer(conn, TimerKind.CRON, event.service_id)
            return
        spec = TimerSpec(
            kind=TimerKind.CRON,
            target_id=event.service_id,
            organization_id=event.organization_id,
            environment_id=event.environment_id,
            expression=str(event.spec.get("schedule", "")),
            timezone=str(event.spec.get("timezone") or "UTC"),
        )
        await self._arm(conn, spec)

    async def _rule(self, conn: asyncpg.Connection, event: ev.DeploymentRuleChanged) -> None:
        state = event.model_dump(exclude={"auto_preview", "revision"})
        if not await q.project_rule(conn, state):
            return
        if await q.environment_deleted(conn, event.environment_id):
            return
        sides = timers.rule_timers(
            environment_id=event.environment_id,
            organization_id=event.organization_id,
            auto_stop=event.auto_stop,
            auto_start=event.auto_start,
            weekdays=list(event.weekdays),
            start_time=event.start_time,
            stop_time=event.stop_time,
            timezone=event.timezone,
        )
        for kind, spec in sides.items():
            if spec is None:
                await q.delete_timer(conn, kind, event.environment_id)
            else:
                await self._arm(conn, spec)

    async def _arm(self, conn: asyncpg.Connection, spec: TimerSpec) -> None:
        """Arm a new timer, re-arm a changed one; an unchanged one keeps its next instant."""
        current = await q.timer(conn, spec.kind, spec.target_id)
        if current is not None and (current.expression, current.timezone) == (
            spec.expression,
            spec.timezone,
        ):
            return
        try:
            schedule = cron.parse(spec.expression, spec.timezone)
            next_fire_at = timers.arm(schedule, self._clock.now())
        except cron.InvalidSchedule as exc:
            # the catalog validates schedules: one it accepted and we cannot read never fires
            log.warning(
                "timers.unreadable_schedule", target_id=str(spec.target_id), reason=str(exc)
            )
            await q.delete_timer(conn, spec.kind, spec.target_id)
            return
        await q.set_timer(conn, spec, next_fire_at)
        log.info(
            "timers.armed",
            kind=spec.kind.value,
            target_id=str(spec.target_id),
            next_fire_at=next_fire_at.isoformat(),
        )
