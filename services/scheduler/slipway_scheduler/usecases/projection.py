"""The scheduler's projection of the catalog, and the timers it arms.

Handlers run in the inbox transaction of the ``scheduler.catalog`` consumer group. Each event
carries an entity's whole state and version; a row is replaced only by a newer version, and a
timer is (re)armed only when the projected row changed, so redeliveries change nothing:
- a cron job (a service of kind ``cronjob``) gets a ``cron`` timer while the deployer says it
  is deployed (``deployer.ServiceStatusChanged``, state DEPLOYED or RESTARTED: what the deployer
  runs), armed from the instant it is; its schedule or zone changed re-arms it from now; its
  tombstone, or its stop or deletion in the deployer, deletes it;
- a deployment rule gets an ``env_stop`` and an ``env_start`` timer for the sides it turns on;
- an environment's tombstone deletes every timer of the environment, and events that arrive
  after it for that environment arm nothing;
- a project's name and an environment's name, mode and project are kept (newer version wins)
  for the outgoing webhooks' filters (``usecases.notifying``);
- an application's repository, branch, ``auto_deploy`` and path filters are kept (newer
  version wins, a tombstone stays one) for the git pushes that deploy it
  (``usecases.git_pushes``), and a rule's ``auto_preview`` for the pull requests that preview
  its environment (``usecases.previewing``).

The catalog's and the deployer's events come through two consumer groups, in transactions
that run side by side: each decision about an environment's timers first takes the
environment's transaction lock, so that the second one reads what the first committed (else
the job's row and its deployed status, committed at once, could each miss the other and leave
the job without a timer).
"""

from __future__ import annotations

import uuid

import asyncpg
import structlog

from slipway_contracts import REGISTRY, Envelope
from slipway_contracts.events import catalog as ev
from slipway_contracts.events import deployer as deployer_events
from slipway_scheduler.db import delivery_queries, git_queries, preview_queries
from slipway_scheduler.db import queries as q
from slipway_scheduler.domain import cron, git_hooks, timers
from slipway_scheduler.domain.timers import Clock, TimerKind, TimerSpec

log = structlog.get_logger(__name__)

EVENT_TYPES = (
    ev.ProjectChanged.event_type,
    ev.ServiceChanged.event_type,
    ev.DeploymentRuleChanged.event_type,
    ev.EnvironmentChanged.event_type,
)
STATUS_TYPES = (deployer_events.ServiceStatusChanged.event_type,)
# the states in which the deployer runs a job's firing (others record it SKIPPED)
_DEPLOYED = frozenset({"DEPLOYED", "RESTARTED"})


class Projection:
    """The consumer's handler; ``clock`` says from when a (re)armed timer counts."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    async def apply(self, conn: asyncpg.Connection, envelope: Envelope) -> None:
        event = REGISTRY.parse(envelope)
        environment_id = getattr(event, "environment_id", None)
        if isinstance(environment_id, uuid.UUID):
            await q.lock_environment(conn, environment_id)
        if isinstance(event, ev.ServiceChanged):
            await self._service(conn, event)
        elif isinstance(event, ev.DeploymentRuleChanged):
            await self._rule(conn, event)
        elif isinstance(event, deployer_events.ServiceStatusChanged):
            await self._status(conn, event)
        elif isinstance(event, ev.EnvironmentChanged):
            await self._environment(conn, event)
        elif isinstance(event, ev.ProjectChanged):
            await delivery_queries.project_project(
                conn,
                project_id=event.project_id,
                organization_id=event.organization_id,
                name=event.name,
                version=event.version,
            )

    async def _environment(self, conn: asyncpg.Connection, event: ev.EnvironmentChanged) -> None:
        await delivery_queries.project_environment(
            conn,
            environment_id=event.environment_id,
            organization_id=event.organization_id,
            project_id=event.project_id,
            name=event.name,
            mode=event.mode,
            version=event.version,
        )
        if event.deleted:
            await q.mark_environment_deleted(
                conn, event.environment_id, event.organization_id, event.version
            )
            await q.delete_environment_timers(conn, event.environment_id)

    async def _service(self, conn: asyncpg.Connection, event: ev.ServiceChanged) -> None:
        if event.kind == "application":
            await _application(conn, event)
            return
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
        if written:
            await self._job_timer(conn, event.service_id)

    async def _status(
        self, conn: asyncpg.Connection, event: deployer_events.ServiceStatusChanged
    ) -> None:
        # one environment's events come in order (keyed by environment): the last one is true
        deployed = event.state in _DEPLOYED
        if deployed and await q.is_deployed(conn, event.service_id):
            return  # e.g. a running-status change of a deployed service: nothing to re-arm
        await q.set_deployed(conn, event.service_id, event.organization_id, deployed)
        await self._job_timer(conn, event.service_id)

    async def _job_timer(self, conn: asyncpg.Connection, service_id: uuid.UUID) -> None:
        """A cron job's timer exists while the catalog has the job and the deployer runs it."""
        job = await q.cron_job(conn, service_id)
        if job is None or not await q.is_deployed(conn, service_id):
            await q.delete_timer(conn, TimerKind.CRON, service_id)
            return
        spec = TimerSpec(
            kind=TimerKind.CRON,
            target_id=service_id,
            organization_id=job.organization_id,
            environment_id=job.environment_id,
            expression=job.schedule,
            timezone=job.timezone,
        )
        await self._arm(conn, spec)

    async def _rule(self, conn: asyncpg.Connection, event: ev.DeploymentRuleChanged) -> None:
        await preview_queries.project_preview_rule(
            conn,
            environment_id=event.environment_id,
            organization_id=event.organization_id,
            auto_preview=event.auto_preview,
            preview_ttl_hours=event.preview_ttl_hours,
            version=event.version,
        )
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


async def _application(conn: asyncpg.Connection, event: ev.ServiceChanged) -> None:
    """What a git push is matched against: the application's repository, branch and
    ``auto_deploy`` (the catalog's default for an application: on)."""
    git = event.spec.get("git")
    git = git if isinstance(git, dict) else {}
    url = str(git.get("url") or "")
    await git_queries.project_application(
        conn,
        {
            "service_id": event.service_id,
            "organization_id": event.organization_id,
            "environment_id": event.environment_id,
            "repository_url": url,
            "repository_key": git_hooks.repository_key(url) if url else "",
            "branch": str(git.get("branch") or "main"),
            "auto_deploy": bool(event.spec.get("auto_deploy", True)),
            "path_filters": [
                str(f) for f in event.spec.get("path_filters") or () if isinstance(f, str)
            ],
            "deleted": event.deleted,
            "version": event.version,
        },
    )
