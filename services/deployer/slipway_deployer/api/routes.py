"""The deployer's internal HTTP API (the gateway authorizes first, then forwards here).

Actions answer 202 with the deployment request (a merged request answers the pending one's id);
a state that forbids the action answers 409 with a stable code. Every action honours an
``Idempotency-Key`` (``slipway_libs.idempotency``): a retry answers the first answer again.
A request that carries the caller's catalog revisions (``X-Slipway-Catalog-Revision``, added by
the gateway) is served once the deployer's copy of the catalog has reached them, else 409
``CATALOG_NOT_CAUGHT_UP`` (``usecases.freshness``); without one it is served from the copy as it
stands.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Body, Depends, Query, Request

from slipway_deployer.api.schemas import ServiceDeployIn
from slipway_deployer.domain import state_machine as sm
from slipway_deployer.domain.deployments import Deployment
from slipway_deployer.usecases import freshness, jobs, requests, status
from slipway_libs import changes, db
from slipway_libs.actor import Actor, InternalCallers, actor_from, internal_guard
from slipway_libs.http import ChangesRoute
from slipway_libs.idempotency import Idempotent, Once
from slipway_libs.tenancy import tenant_scope

CurrentActor = Annotated[Actor, Depends(actor_from)]
Tx = Callable[[], AbstractAsyncContextManager[asyncpg.Connection]]
A = sm.Action


def build_router(
    pool: asyncpg.Pool,
    internal_callers: InternalCallers,
    *,
    revisions: freshness.Revisions,
    catalog_wait_s: float,
) -> APIRouter:
    async def caught_up(request: Request) -> None:
        """After the tenant is bound: the revisions are read under its row security."""
        wanted = changes.parse_revisions(request.headers.get(changes.REVISION_HEADER))
        if wanted:
            await freshness.caught_up(revisions, wanted, wait_s=catalog_wait_s)

    router = APIRouter(
        prefix="/internal/v1",
        dependencies=[
            Depends(internal_guard(internal_callers)),
            Depends(tenant_scope()),
            Depends(caught_up),
        ],
        route_class=ChangesRoute,
    )
    tx = functools.partial(db.transaction, pool)

    async def in_tx(work: Callable[[asyncpg.Connection], Awaitable[Any]]) -> Any:
        async with tx() as conn:
            return await work(conn)

    _environment_actions(router, tx, in_tx)
    _service_actions(router, tx, in_tx)
    _deployments(router, tx)
    return router


InTx = Callable[[Callable[[asyncpg.Connection], Awaitable[Any]]], Awaitable[Any]]


def _accepted(row: Deployment, merged: bool) -> dict[str, Any]:
    return {
        "request_id": str(row.id),
        "deployment_id": str(row.id),
        "environment_id": str(row.environment_id),
        "action": row.action,
        "status": row.status,
        "trigger": row.trigger,
        "service_ids": [str(s) for s in row.service_ids],
        "merged": merged,
    }


def _environment_actions(router: APIRouter, tx: Tx, in_tx: InTx) -> None:
    def action_route(name: str, action: sm.Action) -> None:
        @router.post(f"/environments/{{env_id}}/{name}", status_code=202, name=f"env_{name}")
        async def act(env_id: uuid.UUID, actor: CurrentActor, once: Once) -> dict[str, Any]:
            async def work(conn: asyncpg.Connection) -> dict[str, Any]:
                return _accepted(
                    *await requests.request(conn, environment_id=env_id, action=action, actor=actor)
                )

            return await once.run(tx, work)

    for name, action in (
        ("deploy", A.DEPLOY),
        ("stop", A.STOP),
        ("restart", A.RESTART),
        ("delete", A.DELETE),
    ):
        action_route(name, action)

    @router.post("/environments/{env_id}/redeploy", status_code=202)
    async def redeploy(env_id: uuid.UUID, actor: CurrentActor, once: Once) -> dict[str, Any]:
        async def work(conn: asyncpg.Connection) -> dict[str, Any]:
            return _accepted(*await requests.redeploy(conn, env_id, actor))

        return await once.run(tx, work)

    @router.post("/environments/{env_id}/cancel", status_code=202)
    async def cancel(env_id: uuid.UUID, actor: CurrentActor, once: Once) -> dict[str, Any]:
        async def work(conn: asyncpg.Connection) -> dict[str, Any]:
            return _accepted(await requests.cancel(conn, env_id, actor), False)

        return await once.run(tx, work)

    @router.get("/environments/{env_id}/status")
    async def environment_status(env_id: uuid.UUID) -> dict[str, Any]:
        return await in_tx(lambda conn: status.environment(conn, env_id))

    @router.get("/environments/{env_id}/deployments")
    async def environment_history(
        env_id: uuid.UUID,
        cursor: str | None = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> dict[str, Any]:
        async def read(conn: asyncpg.Connection) -> dict[str, Any]:
            await requests.environment_or_404(conn, env_id)
            return await status.history(conn, env_id, cursor=cursor, limit=limit)

        return await in_tx(read)


def _service_actions(router: APIRouter, tx: Tx, in_tx: InTx) -> None:
    @router.post("/services/{service_id}/deploy", status_code=202)
    async def deploy_service(
        service_id: uuid.UUID,
        actor: CurrentActor,
        once: Once,
        body: Annotated[ServiceDeployIn | None, Body()] = None,
    ) -> dict[str, Any]:
        version = body.version() if body else None
        return await _service_request(once, tx, service_id, A.DEPLOY, actor, version)

    @router.post("/services/{service_id}/stop", status_code=202)
    async def stop_service(
        service_id: uuid.UUID, actor: CurrentActor, once: Once
    ) -> dict[str, Any]:
        return await _service_request(once, tx, service_id, A.STOP, actor, None)

    @router.post("/services/{service_id}/restart", status_code=202)
    async def restart_service(
        service_id: uuid.UUID, actor: CurrentActor, once: Once
    ) -> dict[str, Any]:
        return await _service_request(once, tx, service_id, A.RESTART, actor, None)

    @router.post("/services/{service_id}/run", status_code=202)
    async def run_job(service_id: uuid.UUID, actor: CurrentActor, once: Once) -> dict[str, Any]:
        async def work(conn: asyncpg.Connection) -> dict[str, Any]:
            run = await jobs.request_run(conn, service_id, actor=actor)
            assert run is not None  # only a scheduled run can be there already
            return jobs.run_view(run)

        return await once.run(tx, work)

    @router.get("/services/{service_id}/runs")
    async def job_runs(
        service_id: uuid.UUID, limit: Annotated[int, Query(ge=1, le=100)] = 20
    ) -> dict[str, Any]:
        return await in_tx(lambda conn: jobs.runs(conn, service_id, limit))

    @router.get("/services/{service_id}/status")
    async def service_status(service_id: uuid.UUID) -> dict[str, Any]:
        return await in_tx(lambda conn: status.service(conn, service_id))

    @router.get("/services/{service_id}/deployments")
    async def service_history(
        service_id: uuid.UUID,
        cursor: str | None = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> dict[str, Any]:
        async def read(conn: asyncpg.Connection) -> dict[str, Any]:
            svc = await requests.service_or_404(conn, service_id)
            return await status.history(
                conn, svc.environment_id, service_id=service_id, cursor=cursor, limit=limit
            )

        return await in_tx(read)


async def _service_request(
    once: Idempotent,
    tx: Tx,
    service_id: uuid.UUID,
    action: sm.Action,
    actor: Actor,
    version: str | None,
) -> Any:
    async def act(conn: asyncpg.Connection) -> dict[str, Any]:
        svc = await requests.service_or_404(conn, service_id)
        row, merged = await requests.request(
            conn,
            environment_id=svc.environment_id,
            action=action,
            actor=actor,
            service_id=service_id,
            version=version,
        )
        return _accepted(row, merged)

    return await once.run(tx, act)


def _deployments(router: APIRouter, tx: Tx) -> None:
    @router.get("/deployments/{deployment_id}")
    async def read_deployment(deployment_id: uuid.UUID) -> dict[str, Any]:
        async with tx() as conn:
            return await status.deployment_by_id(conn, deployment_id)

    @router.post("/deployments/{deployment_id}/rollback", status_code=202)
    async def rollback(deployment_id: uuid.UUID, actor: CurrentActor, once: Once) -> dict[str, Any]:
        async def work(conn: asyncpg.Connection) -> dict[str, Any]:
            return _accepted(*await requests.rollback(conn, deployment_id, actor))

        return await once.run(tx, work)

    @router.get("/deployment-index")
    async def deployment_index(
        ids: Annotated[list[uuid.UUID], Query(max_length=500)],
    ) -> dict[str, Any]:
        """Which environment each deployment belongs to (the gateway's authorization)."""
        async with tx() as conn:
            return {"items": await status.deployment_owners(conn, ids)}
