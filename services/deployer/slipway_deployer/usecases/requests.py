"""Deployment requests: accepted (202) into the environment's queue, or refused (409).

One transaction per request, serialized per environment by an advisory lock, so the queue's order
is the order requests were accepted in. A request identical to the last pending one merges into
it (the caller gets that request's id). The worker is woken by a NOTIFY when the request commits.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import structlog

from slipway_contracts.events import deployer as ev
from slipway_deployer.db import queries as q
from slipway_deployer.domain import state_machine as sm
from slipway_deployer.domain.catalog import CatalogEnvironment, CatalogService
from slipway_deployer.domain.deployments import Deployment
from slipway_deployer.usecases import snapshots
from slipway_libs import audit, outbox
from slipway_libs.actor import SYSTEM, Actor
from slipway_libs.errors import Clash, Missing
from slipway_libs.telemetry import current_carrier

log = structlog.get_logger(__name__)

SOURCE = "deployer"
QUEUE_CHANNEL = "deployer_queue"
CANCEL_CHANNEL = "deployer_cancel"
A, S = sm.Action, sm.State


async def environment_or_404(conn: asyncpg.Connection, env_id: uuid.UUID) -> CatalogEnvironment:
    env = await q.environment(conn, env_id)
    if env is None:
        raise Missing("ENVIRONMENT_NOT_FOUND", "No such environment.")
    return env


async def service_or_404(conn: asyncpg.Connection, service_id: uuid.UUID) -> CatalogService:
    svc = await q.service(conn, service_id)
    if svc is None:
        raise Missing("SERVICE_NOT_FOUND", "No such service.")
    return svc


async def request(
    conn: asyncpg.Connection,
    *,
    environment_id: uuid.UUID,
    action: sm.Action,
    actor: Actor,
    service_id: uuid.UUID | None = None,
    version: str | None = None,
    trigger: str = "user",
    rollback_of: Deployment | None = None,
) -> tuple[Deployment, bool]:
    """Queue one request; returns the deployment row that answers for it and whether it merged."""
    env = await environment_or_404(conn, environment_id)
    await q.lock_environment(conn, environment_id)
    env_state = await _environment_state(conn, environment_id)
    if service_id is not None:
        env_next = await _check_service(conn, env_state, service_id, action)
    else:
        env_next = sm.transition(env_state, sm.request_event(action))
    pending = [_as_request(row) for row in await q.queued(conn, environment_id)]
    wanted = sm.DeploymentRequest(
        id=uuid.uuid4(),
        action=action,
        service_ids=frozenset({service_id}) if service_id else frozenset(),
        version=str(rollback_of.id) if rollback_of is not None else version,
        trigger=_kind(trigger),
    )
    queued = sm.enqueue(pending, wanted)
    if queued.merged:
        row = await q.deployment(conn, queued.request.id)
        assert row is not None
        return row, True
    row = await q.insert_deployment(
        conn,
        {
            "id": wanted.id,
            "organization_id": env.organization_id,
            "project_id": env.project_id,
            "environment_id": environment_id,
            "action": action.value,
            "service_ids": sorted(wanted.service_ids),
            "version": version,
            "trigger": trigger,
            "rollback_of": rollback_of.id if rollback_of is not None else None,
            "requested_by": actor.model_dump(mode="json", exclude_none=True),
            "status": "QUEUED",
            "snapshot": rollback_of.snapshot if rollback_of is not None else None,
            "trace_carrier": current_carrier(),
        },
    )
    if env_next is not env_state:
        await q.save_environment_status(
            conn, environment_id, env.organization_id, env_next.value, action=action.value
        )
    await _announce(conn, row, actor)
    return row, False


async def request_for_event(
    conn: asyncpg.Connection,
    event: str,
    said: dict[str, Any],
    *,
    environment_id: uuid.UUID,
    action: sm.Action,
    actor: Actor,
    trigger: str,
    service_id: uuid.UUID | None = None,
    version: str | None = None,
) -> Deployment | None:
    """A request another service's event asks for (a git push, a preview, a schedule), in a
    savepoint: a refusal (the state's 409, an environment or service unknown by now) leaves the
    consumer's inbox transaction usable, and the event is done. Logged as ``<event>.queued`` or
    ``<event>.refused`` with ``said``; None when refused."""
    try:
        async with conn.transaction():
            row, merged = await request(
                conn,
                environment_id=environment_id,
                action=action,
                actor=actor,
                service_id=service_id,
                version=version,
                trigger=trigger,
            )
    except (Clash, Missing) as refused:
        log.info(f"{event}.refused", **said, code=getattr(refused, "code", None))
        return None
    log.info(f"{event}.queued", **said, deployment_id=str(row.id), merged=merged)
    return row


async def _environment_state(conn: asyncpg.Connection, env_id: uuid.UUID) -> sm.State:
    status = await q.environment_status(conn, env_id)
    return sm.State(status.state) if status is not None else S.READY


async def _check_service(
    conn: asyncpg.Connection, env_state: sm.State, service_id: uuid.UUID, action: sm.Action
) -> sm.State:
    """A service's request is judged on the service's own state; the environment only refuses
    it while being deleted. Returns the environment's next state."""
    status = await q.service_status(conn, service_id)
    state = sm.State(status.state) if status is not None else S.READY
    if not sm.is_busy(state):
        sm.transition(state, sm.request_event(action))  # raises the 409 when refused
    if env_state in (S.DELETE_QUEUED, S.DELETING, S.DELETED):
        sm.transition(env_state, sm.request_event(action))  # raises the right refusal
    return env_state if sm.is_busy(env_state) else sm.queued_state(action)


# what the history records beyond the state machine's kinds: a user's rollback or redeploy
_USER_TRIGGERS = frozenset({"rollback", "redeploy"})


def _kind(trigger: str) -> sm.TriggerKind:
    return sm.TriggerKind.USER if trigger in _USER_TRIGGERS else sm.TriggerKind(trigger)


def _as_request(row: Deployment) -> sm.DeploymentRequest:
    rollback = row.rollback_of
    return sm.DeploymentRequest(
        id=row.id,
        action=sm.Action(row.action),
        service_ids=frozenset(row.service_ids),
        version=str(rollback) if rollback is not None else row.version,
        trigger=_kind(row.trigger),
    )


async def _announce(conn: asyncpg.Connection, row: Deployment, actor: Actor) -> None:
    await outbox.publish(
        conn,
        ev.DeploymentQueued(
            deployment_id=row.id,
            environment_id=row.environment_id,
            organization_id=row.organization_id,
            action=row.action,
            trigger=row.trigger,
            service_ids=list(row.service_ids),
            requested_by=actor.id,
            rollback_of=row.rollback_of,
        ),
        subject=str(row.environment_id),
        source=SOURCE,
        organization_id=row.organization_id,
        announce=True,
    )
    await audit.record(
        conn,
        producer=SOURCE,
        actor=actor,
        organization_id=row.organization_id,
        action=row.action,
        target_type="ENVIRONMENT",
        target_id=row.environment_id,
        project_id=row.project_id,
        environment_id=row.environment_id,
        change=_audit_change(row),
    )
    await q.notify(conn, QUEUE_CHANNEL, str(row.id))


def _audit_change(row: Deployment) -> dict[str, Any]:
    change: dict[str, Any] = {"deployment_id": str(row.id), "trigger": row.trigger}
    if row.service_ids:
        change["service_ids"] = [str(s) for s in row.service_ids]
    if row.version:
        change["version"] = row.version
    if row.rollback_of:
        change["rollback_of"] = str(row.rollback_of)
    return change


async def rollback(
    conn: asyncpg.Connection, deployment_id: uuid.UUID, actor: Actor, *, trigger: str = "rollback"
) -> tuple[Deployment, bool]:
    """Deploy again the snapshot an earlier deployment deployed."""
    earlier = await q.deployment(conn, deployment_id)
    if earlier is None:
        raise Missing("DEPLOYMENT_NOT_FOUND", "No such deployment.")
    if earlier.action != A.DEPLOY or earlier.status != "SUCCESS" or not earlier.snapshot:
        raise Clash("NOT_ROLLBACKABLE", "Only a deployment that succeeded can be deployed again.")
    return await request(
        conn,
        environment_id=earlier.environment_id,
        action=A.DEPLOY,
        actor=actor,
        trigger=trigger,
        rollback_of=earlier,
    )


async def redeploy(
    conn: asyncpg.Connection, env_id: uuid.UUID, actor: Actor
) -> tuple[Deployment, bool]:
    """Deploy again what the environment's last successful deployment deployed."""
    await environment_or_404(conn, env_id)
    for row in await q.history(conn, env_id, service_id=None, before_seq=None, limit=50):
        if row.action == A.DEPLOY and row.status == "SUCCESS" and row.snapshot:
            return await rollback(conn, row.id, actor, trigger="redeploy")
    raise Clash("NOTHING_TO_REDEPLOY", "This environment has no successful deployment yet.")


async def cancel(conn: asyncpg.Connection, env_id: uuid.UUID, actor: Actor) -> Deployment:
    """Cancel the running deployment (it goes through CANCELING until the worker stopped what
    runs), else the next queued one (canceled at once)."""
    env = await environment_or_404(conn, env_id)
    await q.lock_environment(conn, env_id)
    state = await _environment_state(conn, env_id)
    current = await q.running(conn, env_id)
    taken = await _cancel_queued(conn, env_id, state) if current is None else None
    if taken is None:  # running, or taken by the worker in between (a claim takes no lock)
        taken = await _cancel_running(conn, state, current or await q.running(conn, env_id))
    row, next_state = taken
    await q.save_environment_status(conn, env_id, env.organization_id, next_state.value)
    await audit.record(
        conn,
        producer=SOURCE,
        actor=actor,
        organization_id=env.organization_id,
        action="CANCEL",
        target_type="ENVIRONMENT",
        target_id=env_id,
        project_id=env.project_id,
        environment_id=env_id,
        change={"deployment_id": str(row.id)},
    )
    return row


async def _cancel_queued(
    conn: asyncpg.Connection, env_id: uuid.UUID, state: sm.State
) -> tuple[Deployment, sm.State] | None:
    """The next queued request, canceled at once; None when the worker has just taken it
    (also when the queue is empty: the worker may have claimed the only request between our
    read of the running one and this one, and the caller looks for it running again)."""
    queue = await q.queued(conn, env_id)
    if not queue:
        return None
    row = await q.cancel_queued(conn, queue[0].id)
    if row is None:
        return None
    await q.notify(conn, QUEUE_CHANNEL, str(row.id))  # the next one may start
    next_state = sm.transition(state, sm.Event.CANCEL_REQUESTED) if sm.is_busy(state) else state
    return row, next_state


async def _cancel_running(
    conn: asyncpg.Connection, state: sm.State, current: Deployment | None
) -> tuple[Deployment, sm.State]:
    """The running deployment goes CANCELING; its execution stops and ends it."""
    if current is None:  # taken and already over
        raise sm.TransitionRefused(
            sm.RefusalCode.NOTHING_TO_CANCEL, "nothing is queued or running", state=state
        )
    next_state = sm.transition(state, sm.Event.CANCEL_REQUESTED)
    if current.action == A.DELETE:
        raise sm.TransitionRefused(
            sm.RefusalCode.DELETE_NOT_CANCELABLE, "a running deletion cannot be canceled"
        )
    row = await q.update_deployment(conn, current.id, status="CANCELING")
    await q.notify(conn, CANCEL_CHANNEL, str(row.id))
    return row, next_state


async def tear_down_orphans(conn: asyncpg.Connection) -> list[Deployment]:
    """Level-triggered garbage collection: what still runs of services (or whole environments)
    the catalog deleted is deleted by a system request, once (none while one is pending)."""
    by_environment: dict[uuid.UUID, list[CatalogService]] = {}
    for orphan in await q.orphans(conn):
        by_environment.setdefault(orphan.environment_id, []).append(orphan)
    queued = []
    for env_id, services in by_environment.items():
        await q.lock_environment(conn, env_id)
        env = await q.environment_any(conn, env_id)
        if env is None:
            continue
        whole = bool(env.deleted)
        row = await q.insert_deployment(
            conn,
            {
                "id": uuid.uuid4(),
                "organization_id": env.organization_id,
                "project_id": env.project_id,
                "environment_id": env_id,
                "action": A.DELETE.value,
                "service_ids": [] if whole else sorted(s.id for s in services),
                "trigger": sm.TriggerKind.SYSTEM.value,
                "requested_by": SYSTEM.model_dump(mode="json", exclude_none=True),
                "status": "QUEUED",
                "snapshot": await snapshots.teardown(conn, env, services),
            },
        )
        await _announce(conn, row, SYSTEM)
        queued.append(row)
    return queued
