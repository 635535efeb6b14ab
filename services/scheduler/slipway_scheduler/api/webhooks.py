"""The scheduler's internal webhook routes (the gateway authorizes ``webhooks:manage`` first).
Thin: open the tenant-scoped transaction, call the use case."""

from __future__ import annotations

import functools
import uuid
from typing import Any

import asyncpg
from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from slipway_libs import db
from slipway_libs.actor import InternalCallers, internal_guard
from slipway_libs.tenancy import tenant_scope
from slipway_scheduler.domain.timers import Clock
from slipway_scheduler.usecases import delivery_log, webhooks
from slipway_scheduler.usecases.webhooks import NewWebhook, WebhookDeps


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2048)
    events: list[str] = Field(max_length=16)
    project_pattern: str | None = Field(default=None, max_length=200)
    environment_modes: list[str] = Field(default_factory=list, max_length=8)
    format: str = Field(default="json", max_length=16)
    description: str = Field(default="", max_length=500)


def build_webhook_router(
    pool: asyncpg.Pool, internal_callers: InternalCallers, deps: WebhookDeps, clock: Clock
) -> APIRouter:
    router = APIRouter(
        prefix="/internal/v1/organizations/{org_id}/webhooks",
        dependencies=[Depends(internal_guard(internal_callers)), Depends(tenant_scope())],
    )
    tx = functools.partial(db.transaction, pool)

    @router.post("", status_code=201)
    async def create_webhook(org_id: uuid.UUID, body: WebhookIn) -> dict[str, Any]:
        """A new webhook; the answer carries its signing secret, shown this once."""
        async with tx() as conn:
            return await webhooks.create(conn, deps, org_id, NewWebhook(**body.model_dump()))

    @router.get("")
    async def list_webhooks(org_id: uuid.UUID) -> dict[str, Any]:
        async with tx() as conn:
            return {"items": await webhooks.listed(conn, org_id), "next_cursor": None}

    @router.get("/{webhook_id}")
    async def get_webhook(org_id: uuid.UUID, webhook_id: uuid.UUID) -> dict[str, Any]:
        async with tx() as conn:
            return await webhooks.get(conn, org_id, webhook_id)

    @router.delete("/{webhook_id}", status_code=204)
    async def delete_webhook(org_id: uuid.UUID, webhook_id: uuid.UUID) -> Response:
        async with tx() as conn:
            await webhooks.delete(conn, org_id, webhook_id)
        return Response(status_code=204)

    @router.get("/{webhook_id}/deliveries")
    async def list_deliveries(
        org_id: uuid.UUID,
        webhook_id: uuid.UUID,
        cursor: str | None = Query(default=None, max_length=200),
        limit: int = Query(default=20, ge=1, le=delivery_log.MAX_PAGE),
    ) -> dict[str, Any]:
        """The webhook's deliveries, newest first, each with its attempts."""
        async with tx() as conn:
            return await delivery_log.page(conn, org_id, webhook_id, cursor=cursor, limit=limit)

    @router.post("/{webhook_id}/deliveries/{delivery_id}/redeliver", status_code=202)
    async def redeliver(
        org_id: uuid.UUID, webhook_id: uuid.UUID, delivery_id: uuid.UUID
    ) -> dict[str, Any]:
        """A new attempt of the delivery, now (and retries again if it fails)."""
        async with tx() as conn:
            return await delivery_log.redeliver(conn, clock, org_id, webhook_id, delivery_id)

    return router
