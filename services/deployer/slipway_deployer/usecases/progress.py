"""Recording a deployment's progress: every state change goes through the state machine, is
written with its outgoing event in one transaction (outbox), and wakes whoever waits on it.

Tolerant by design: the worker reports what happened; when the state machine refuses an event
(the state moved on meanwhile, e.g. an environment already CANCELING), the state is kept as it is
and the refusal is logged, never raised into the deployment.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import structlog

from slipway_contracts.envelope import EventPayload
from slipway_contracts.events import deployer as ev
from slipway_contracts.events.logs import LogLine, LogLinesAppended
from slipway_deployer.db import queries as q
from slipway_deployer.domain import state_machine as sm
from slipway_deployer.domain.deployments import Acting, Deployment, StageRun
from slipway_libs import outbox

log = structlog.get_logger(__name__)
SOURCE = "deployer"
S = sm.State


def _next(state: sm.State, event: sm.Event, action: sm.Action) -> sm.State | None:
    """The state after ``event``; an idle state first takes the request (a resumed or
    service-level deployment may find its subject idle)."""
    try:
        if not sm.is_busy(state) and event not in (sm.Event.TIMEOUT, sm.Event.CANCELED):
            state = sm.transition(state, sm.request_event(action))
        return sm.transition(state, event)
    except sm.TransitionRefused as exc:
        log.info("deployer.transition_refused", state=state, on=event, code=exc.code)
        return None


async def environment_event(
    conn: asyncpg.Connection, deployment: Deployment, event: sm.Event
) -> sm.State | None:
    env_id = deployment.environment_id
    status = await q.environment_status(conn, env_id)
    state = S(status.state) if status is not None else S.READY
    action = sm.Action(deployment.action)
    target = _next(state, event, action)
    if target is not None and target is not state:
        await q.save_environment_status(
            conn,
            env_id,
            deployment.organization_id,
            target.value,
            action=action.value,
            deployment_id=deployment.id,
        )
    return target


async def set_environment_state(
    conn: asyncpg.Connection, deployment: Deployment, state: sm.State
) -> None:
    """For the few moves that are not one event (a queued request taken at start)."""
    await q.save_environment_status(
        conn,
        deployment.environment_id,
        deployment.organization_id,
        state.value,
        action=deployment.action,
        deployment_id=deployment.id,
    )


async def environment_still_runs(conn: asyncpg.Connection, deployment: Deployment) -> None:
    """After some services were stopped or deleted, an environment whose other services still
    run reads DEPLOYED, not STOPPED or DELETED."""
    acted = set(deployment.service_ids)
    for status in await q.service_statuses(conn, deployment.environment_id):
        if status.service_id not in acted and status.state in (S.DEPLOYED, S.RESTARTED):
            await set_environment_state(conn, deployment, S.DEPLOYED)
            return


async def service_event(
    conn: asyncpg.Connection,
    deployment: Deployment,
    service_id: uuid.UUID,
    event: sm.Event,
    *,
    running_status: str | None = None,
    urls: list[str] | None = None,
    message: str | None = None,
    deployed_config: str | None = None,
    deployed_image: str | None = None,
) -> sm.State | None:
    current = await q.service_status(conn, service_id)
    state = S(current.state) if current is not None else S.READY
    action = sm.Action(deployment.action)
    target = _next(state, event, action)
    if target is None:
        return None
    await q.save_service_status(
        conn,
        service_id=service_id,
        environment_id=deployment.environment_id,
        organization_id=deployment.organization_id,
        state=target.value,
        action=action.value,
        running_status=running_status,
        urls=urls,
        message=message,
        deployed_config=deployed_config,
        deployed_image=deployed_image,
        deployment_id=deployment.id,
    )
    row = await q.service_status(conn, service_id)
    await publish(
        conn,
        deployment,
        ev.ServiceStatusChanged(
            **ids(deployment),
            service_id=service_id,
            state=target.value,
            running_status=row.running_status if row else running_status,
            urls=list(row.urls) if row else (urls or []),
            message=message,
        ),
    )
    return target


async def service_queued(
    conn: asyncpg.Connection, deployment: Deployment, service_id: uuid.UUID
) -> None:
    """A service the deployment will act on shows the request's queued state while it waits."""
    current = await q.service_status(conn, service_id)
    state = S(current.state) if current is not None else S.READY
    if sm.is_busy(state) or not sm.can_request(state, sm.Action(deployment.action)):
        return
    await service_event_to(
        conn, deployment, service_id, sm.queued_state(sm.Action(deployment.action))
    )


async def service_event_to(
    conn: asyncpg.Connection, deployment: Deployment, service_id: uuid.UUID, state: sm.State
) -> None:
    await q.save_service_status(
        conn,
        service_id=service_id,
        environment_id=deployment.environment_id,
        organization_id=deployment.organization_id,
        state=state.value,
        action=deployment.action,
        deployment_id=deployment.id,
    )
    await publish(
        conn,
        deployment,
        ev.ServiceStatusChanged(**ids(deployment), service_id=service_id, state=state.value),
    )


async def stage_status(
    conn: asyncpg.Connection,
    deployment: Deployment,
    stage: StageRun,
    status: sm.StageStatus,
) -> None:
    await q.set_stage_status(conn, deployment.id, stage.position, status.value)
    await publish(
        conn,
        deployment,
        ev.DeploymentStageChanged(
            **ids(deployment),
            stage_id=stage.stage_id,
            stage_name=stage.name,
            position=stage.position,
            status=status.value,
        ),
    )


async def publish(conn: asyncpg.Connection, deployment: Acting, payload: EventPayload) -> None:
    await outbox.publish(
        conn,
        payload,
        subject=str(deployment.environment_id),
        source=SOURCE,
        organization_id=deployment.organization_id,
    )


def ids(deployment: Acting) -> dict[str, Any]:
    return {
        "deployment_id": deployment.id,
        "environment_id": deployment.environment_id,
        "organization_id": deployment.organization_id,
        "action": deployment.action,
    }


async def deploy_log(
    conn: asyncpg.Connection,
    deployment: Deployment,
    text: str,
    *,
    service_id: uuid.UUID | None = None,
) -> None:
    """One line of the deployment's own log (what the deployer does), to the log topic."""
    await outbox.publish(
        conn,
        LogLinesAppended(
            kind="deploy",
            environment_id=deployment.environment_id,
            service_id=service_id,
            deployment_id=deployment.id,
            lines=[LogLine(at=datetime.now(UTC), stream="system", text=text)],
        ),
        subject=str(deployment.id),
        source=SOURCE,
        organization_id=deployment.organization_id,
    )
