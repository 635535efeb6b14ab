"""Planning a claimed deployment: the first transaction of its execution.

The worker's claim only takes a request off its queue (ONGOING, ``started_at``); planning judges
it again on the state it finds, freezes its snapshot, writes its stages and service runs and moves
the environment on. Serialized with the environment's requests and cancels by their lock, so a
cancel that came between the claim and the plan is seen here.
"""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import structlog

from slipway_contracts.events import deployer as ev
from slipway_deployer.db import queries as q
from slipway_deployer.domain import plan as p
from slipway_deployer.domain import state_machine as sm
from slipway_deployer.domain.deployments import Deployment
from slipway_deployer.usecases import progress, snapshots

log = structlog.get_logger(__name__)
S = sm.State


async def plan(conn: asyncpg.Connection, claimed: Deployment) -> Deployment:
    """Returns the deployment as it now stands: planned and ONGOING, ended ERROR when it cannot
    run (refused by the state it found), or CANCELING when a cancel came first."""
    await q.lock_environment(conn, claimed.environment_id)
    row = await q.deployment(conn, claimed.id)
    if row is None or row.status != "ONGOING" or row.planned_at is not None:
        return row or claimed
    action = sm.Action(row.action)
    status = await q.environment_status(conn, row.environment_id)
    env_state = S(status.state) if status is not None else S.READY
    leftovers = env_state is S.DELETED and row.trigger == sm.TriggerKind.SYSTEM
    try:
        # tearing down leftovers of a deleted environment: its state stays DELETED
        if not sm.is_busy(env_state) and not leftovers:
            env_state = sm.transition(env_state, sm.request_event(action))
        snapshot = row.snapshot or await snapshots.build(conn, row)
    except (sm.TransitionRefused, LookupError) as exc:
        code = getattr(exc, "code", "ENVIRONMENT_NOT_FOUND")
        log.info("deployment.refused", deployment_id=str(row.id), reason=code)
        return await q.update_deployment(
            conn, row.id, status="ERROR", reason=code, message=str(exc), finished_at=_now()
        )
    stages = p.plan(snapshot, action)
    await q.insert_stages(
        conn, [(row.id, s.position, s.stage_id, s.name, "QUEUED") for s in stages]
    )
    await q.insert_service_runs(
        conn,
        [
            (row.id, item.id, s.position, item.name, item.kind, "QUEUED")
            for s in stages
            for item in s.services
        ],
    )
    deployment = await q.update_deployment(
        conn, row.id, planned_at=_now(), heartbeat_at=_now(), snapshot=snapshot
    )
    await progress.set_environment_state(conn, deployment, env_state)
    await progress.publish(
        conn,
        deployment,
        ev.DeploymentStarted(**progress.ids(deployment), stages=[s.name for s in stages]),
    )
    for stage in stages:
        for item in stage.services:
            await progress.service_queued(conn, deployment, item.id)
    await progress.deploy_log(conn, deployment, f"{action.value} started: {len(stages)} stage(s)")
    return deployment


def _now() -> datetime:
    return datetime.now(UTC)
