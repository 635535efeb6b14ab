"""The running status of each long-running service (RUNNING, WARNING after a crash, ERROR...)
kept in the database as the runtime sees it, and told to subscribers when it changes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from slipway_contracts.events import deployer as ev
from slipway_deployer.adapters.runtime import Runtime, RuntimeFailure
from slipway_deployer.db import queries as q
from slipway_deployer.domain import state_machine as sm
from slipway_deployer.domain.deployments import ServiceStatus
from slipway_deployer.usecases import progress
from slipway_deployer.usecases.steps import Tools


async def observe(tools: Tools) -> None:
    """One round over the services the runtimes may run now, each asked of its environment's
    cluster's runtime (a cluster that cannot be reached now is skipped this round)."""
    async with tools.pool.acquire() as conn:
        rows = await q.watched(conn)
    runtimes: dict[uuid.UUID, Runtime | None] = {}  # by environment, for this round
    for row in rows:
        if row.environment_id not in runtimes:
            runtimes[row.environment_id] = await _runtime_of(tools, row.environment_id)
        runtime = runtimes[row.environment_id]
        if runtime is None:
            continue
        try:
            state = await runtime.status(str(row.service_id))
        except RuntimeFailure:
            continue
        known = list(row.urls)
        urls = [state.urls[port] for port in sorted(state.urls)]
        if not urls or set(urls) == set(known):
            urls = known  # the deployment's order: the default port's URL first
        if state.status.value == row.running_status and urls == known:
            continue  # nothing changed: no round trip
        async with tools.pool.acquire() as conn, conn.transaction():
            if await q.set_running_status(conn, row.service_id, state.status.value, urls):
                await progress.publish(
                    conn,
                    _owner(row),
                    ev.ServiceStatusChanged(
                        **progress.ids(_owner(row)),
                        service_id=row.service_id,
                        state=row.state,
                        running_status=state.status.value,
                        urls=urls,
                        message=state.message,
                    ),
                )


async def _runtime_of(tools: Tools, environment_id: uuid.UUID) -> Runtime | None:
    async with tools.pool.acquire() as conn:
        cluster_id, cluster = await q.environment_cluster(conn, environment_id)
    where = await tools.runtimes.known(cluster_id, cluster)
    return None if where is None else where.runtime


@dataclass(frozen=True, slots=True, kw_only=True)
class _Owner:
    """Whom a running status change is told as: the deployment that last acted on the service."""

    id: uuid.UUID | None
    environment_id: uuid.UUID
    organization_id: uuid.UUID
    action: str


def _owner(row: ServiceStatus) -> _Owner:
    return _Owner(
        id=row.last_deployment_id,
        environment_id=row.environment_id,
        organization_id=row.organization_id,
        action=row.last_action or sm.Action.DEPLOY.value,
    )
