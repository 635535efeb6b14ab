"""The scheduler's internal git webhook routes: managing an organization's endpoints (the
gateway authorizes ``webhooks:manage`` first) and the deliveries the gateway passes on from
the public, unauthenticated ``POST /api/v1/hooks/git/{id}`` (the signature, checked by the use
case, is their authentication). Thin: open the transaction, call the use case."""

from __future__ import annotations

import functools
import uuid
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from slipway_libs import db
from slipway_libs.actor import Actor, InternalCallers, actor_from, internal_guard
from slipway_libs.tenancy import tenant_scope
from slipway_scheduler.domain.git_hooks import HEADERS
from slipway_scheduler.usecases import git_polling, git_pushes, git_webhooks
from slipway_scheduler.usecases.git_pushes import GitHookDeps

CurrentActor = Annotated[Actor, Depends(actor_from)]


class GitWebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = Field(default="", max_length=500)


def build_git_webhook_router(
    pool: asyncpg.Pool, internal_callers: InternalCallers, deps: GitHookDeps
) -> APIRouter:
    router = APIRouter()
    router.include_router(_management(pool, internal_callers, deps))
    router.include_router(_deliveries(pool, internal_callers, deps))
    router.include_router(_polls(pool, internal_callers))
    return router


def _polls(pool: asyncpg.Pool, internal_callers: InternalCallers) -> APIRouter:
    router = APIRouter(
        prefix="/internal/v1/organizations/{org_id}/git-polls",
        dependencies=[Depends(internal_guard(internal_callers)), Depends(tenant_scope())],
    )

    @router.get("")
    async def list_git_polls(org_id: uuid.UUID) -> dict[str, Any]:
        """The branches polled for new commits: the last head seen, the last failure."""
        async with db.transaction(pool) as conn:
            return {"items": await git_polling.states(conn, org_id), "next_cursor": None}

    return router


def _management(
    pool: asyncpg.Pool, internal_callers: InternalCallers, deps: GitHookDeps
) -> APIRouter:
    router = APIRouter(
        prefix="/internal/v1/organizations/{org_id}/git-webhooks",
        dependencies=[Depends(internal_guard(internal_callers)), Depends(tenant_scope())],
    )
    tx = functools.partial(db.transaction, pool)

    @router.post("", status_code=201)
    async def create_git_webhook(
        org_id: uuid.UUID, actor: CurrentActor, body: GitWebhookIn | None = None
    ) -> dict[str, Any]:
        """A new endpoint; the answer carries its secret, shown this once."""
        description = body.description if body else ""
        async with tx() as conn:
            return await git_webhooks.create(conn, deps.sealer, actor, org_id, description)

    @router.get("")
    async def list_git_webhooks(org_id: uuid.UUID) -> dict[str, Any]:
        async with tx() as conn:
            return {"items": await git_webhooks.listed(conn, org_id), "next_cursor": None}

    @router.get("/{webhook_id}")
    async def get_git_webhook(org_id: uuid.UUID, webhook_id: uuid.UUID) -> dict[str, Any]:
        async with tx() as conn:
            return await git_webhooks.get(conn, org_id, webhook_id)

    @router.delete("/{webhook_id}", status_code=204)
    async def delete_git_webhook(
        org_id: uuid.UUID, webhook_id: uuid.UUID, actor: CurrentActor
    ) -> Response:
        async with tx() as conn:
            await git_webhooks.delete(conn, actor, org_id, webhook_id)
        return Response(status_code=204)

    @router.get("/{webhook_id}/deliveries")
    async def list_git_deliveries(
        org_id: uuid.UUID,
        webhook_id: uuid.UUID,
        cursor: str | None = Query(default=None, max_length=200),
        limit: int = Query(default=20, ge=1, le=git_webhooks.MAX_PAGE),
    ) -> dict[str, Any]:
        """The endpoint's deliveries, newest first: event, result, what each triggered."""
        async with tx() as conn:
            return await git_webhooks.deliveries(
                conn, org_id, webhook_id, cursor=cursor, limit=limit
            )

    return router


def _deliveries(
    pool: asyncpg.Pool, internal_callers: InternalCallers, deps: GitHookDeps
) -> APIRouter:
    # no tenant scope: the delivery names no organization (the platform's own request, which
    # sees every row); the endpoint's organization bounds what it may deploy
    router = APIRouter(
        prefix="/internal/v1/hooks/git",
        dependencies=[Depends(internal_guard(internal_callers))],
    )

    @router.post("/{webhook_id}", status_code=202)
    async def receive_git_delivery(webhook_id: uuid.UUID, request: Request) -> JSONResponse:
        """A provider's delivery: the raw body as signed, and the provider's headers."""
        body = await request.body()
        headers = {name: value for name in HEADERS if (value := request.headers.get(name))}
        async with db.transaction(pool) as conn:
            record = await git_pushes.receive(conn, deps, webhook_id, headers, body)
        return JSONResponse(record, status_code=202)

    return router
