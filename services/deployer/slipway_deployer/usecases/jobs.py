"""Job runs outside deployments: a cron job forced through the API, or fired by its schedule
(the scheduler's ``JobRunRequested``). The worker runs them (``job_runs.JobRunner``). On a
Kubernetes cluster the schedule is the cluster's own (a CronJob): the scheduler's firings of it
are dropped here.

While a run of the job is queued or running, a new one follows the job's concurrency policy
(as a Kubernetes CronJob's): ``forbid`` skips a scheduled run (SKIPPED) and refuses a user's
(409); ``allow`` starts it alongside; ``replace`` cancels what is queued or running (CANCELED;
a running one is CANCELING until the worker stopped it), then starts it — never before the
replaced one has stopped."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import structlog

from slipway_contracts import REGISTRY, Envelope
from slipway_contracts.events import scheduler as sev
from slipway_deployer.db import queries as q
from slipway_deployer.domain.running import JobRun
from slipway_deployer.usecases.requests import QUEUE_CHANNEL, service_or_404
from slipway_libs.actor import Actor
from slipway_libs.errors import Clash, InvalidInput

log = structlog.get_logger(__name__)
JOB_KINDS = ("cronjob", "lifecycle")


async def request_run(
    conn: asyncpg.Connection,
    service_id: uuid.UUID,
    *,
    actor: Actor | None,
    scheduled_at: Any = None,
) -> JobRun | None:
    """Queue a run (202), by the job's concurrency policy while another is queued or running
    (see the module's docstring). None: that scheduled run exists."""
    svc = await service_or_404(conn, service_id)
    if svc.kind not in JOB_KINDS:
        raise InvalidInput("NOT_A_JOB", "Only cron and lifecycle jobs can be run.")
    status = await q.service_status(conn, service_id)
    deployed = status is not None and status.state in ("DEPLOYED", "RESTARTED")
    busy = await q.active_job_run(conn, service_id)
    policy = str(svc.spec.get("concurrency_policy") or "forbid")
    scheduled = scheduled_at is not None
    if not scheduled and not deployed:
        raise Clash("JOB_NOT_DEPLOYED", "Deploy the job first: its image is not known yet.")
    if not scheduled and busy is not None and policy == "forbid":
        raise Clash("JOB_ALREADY_RUNNING", "A run of this job is queued or running.")
    skipped = None
    if not deployed:
        skipped = "the job is not deployed"
    elif busy is not None and policy == "forbid":
        skipped = "a run was still running (concurrency policy forbid)"
    elif busy is not None and policy == "replace":
        if scheduled and await q.scheduled_run_exists(conn, service_id, scheduled_at):
            return None  # that firing again (a second scheduler): it must not replace itself
        when = f"scheduled at {scheduled_at.isoformat()}" if scheduled else "asked by a user"
        await q.replace_job_runs(conn, service_id, f"replaced by a newer run ({when})")
    row = await q.insert_job_run(
        conn,
        {
            "id": uuid.uuid4(),
            "service_id": service_id,
            "environment_id": svc.environment_id,
            "organization_id": svc.organization_id,
            "trigger": "schedule" if scheduled else "user",
            "scheduled_at": scheduled_at,
            "requested_by": actor.model_dump(mode="json", exclude_none=True) if actor else None,
            "status": "SKIPPED" if skipped else "QUEUED",
            "message": skipped,
        },
    )
    if row is not None and not skipped:
        await q.notify(conn, QUEUE_CHANNEL, str(row.id))
    return row


async def runs(conn: asyncpg.Connection, service_id: uuid.UUID, limit: int) -> dict[str, Any]:
    """The service's latest runs, newest first."""
    await service_or_404(conn, service_id)
    rows = await q.job_runs(conn, service_id, limit)
    return {"items": [run_view(r) for r in rows], "next_cursor": None}


def run_view(row: JobRun) -> dict[str, Any]:
    def iso(value: Any) -> str | None:
        return None if value is None else value.isoformat()

    return {
        "run_id": str(row.id),
        "service_id": str(row.service_id),
        "environment_id": str(row.environment_id),
        "trigger": row.trigger,
        "status": row.status,
        "exit_code": row.exit_code,
        "message": row.message,
        "scheduled_at": iso(row.scheduled_at),
        "created_at": iso(row.created_at),
        "started_at": iso(row.started_at),
        "finished_at": iso(row.finished_at),
    }


async def on_run_requested(conn: asyncpg.Connection, envelope: Envelope) -> None:
    command = REGISTRY.parse(envelope)
    assert isinstance(command, sev.JobRunRequested)
    svc = await q.service(conn, command.service_id)
    if svc is None:
        return  # deleted since the schedule fired
    _, cluster = await q.environment_cluster(conn, svc.environment_id)
    if cluster is not None and cluster.kind != "local":
        # a Kubernetes cluster runs the job's schedule itself (its CronJob): a second run here
        # would double every firing (a manual run still goes through ``request_run``)
        log.info("job.schedule_left_to_cluster", service_id=str(svc.id), cluster=cluster.name)
        return
    try:
        await request_run(conn, command.service_id, actor=None, scheduled_at=command.scheduled_at)
    except (Clash, InvalidInput):
        return  # no longer a job
