"""The deployment queue as the leading worker takes it: what a new term takes over, the claim of
each environment's head, and the heartbeat of the deployments it runs."""

from __future__ import annotations

import uuid

import structlog

from slipway_deployer.db import queries as q
from slipway_deployer.domain.deployments import Deployment
from slipway_deployer.usecases.steps import Tools

log = structlog.get_logger(__name__)


async def take_over(tools: Tools) -> list[Deployment]:
    """Adopt what the local runtime still runs and follow its logs again; the deployments left
    ONGOING or CANCELING (by this deployer's last term or a dead one), to resume. (A cluster's
    runtime is made when a deployment or the monitor first needs it.)"""
    runtime, local_databases = tools.runtimes.local_runtime, tools.runtimes.local_databases
    adopted = await runtime.adopt()
    databases = await local_databases.adopt()
    log.info("worker.adopted", services=len(adopted), databases=len(databases))
    async with tools.pool.acquire() as conn:
        rows = await q.believed_running(conn)
        unfinished = await q.unfinished(conn)
    for row in rows:
        sid = str(row.service_id)
        if sid in adopted:
            tools.live.follow_service(row, row.service_id, runtime)
        elif sid in databases:
            tools.live.follow_database(row, row.service_id, local_databases)
    return list(unfinished)


async def claim(tools: Tools, free: int) -> list[Deployment]:
    """Up to ``free`` deployments, now ONGOING (each plans itself when it runs)."""
    async with tools.pool.acquire() as conn:
        return list(await q.claim(conn, free))


async def heartbeat(tools: Tools, running: list[uuid.UUID]) -> None:
    """Tell that these deployments are still run by a live worker."""
    if running:
        async with tools.pool.acquire() as conn:
            await q.heartbeat(conn, running)
