"""The scheduler's internal HTTP API (the gateway authorizes first, then forwards here).

Routes are thin: open the tenant-scoped transaction, call the use case."""

from __future__ import annotations

import functools
import uuid
from typing import Any

import asyncpg
from fastapi import APIRouter, Depends

from slipway_libs import db
from slipway_libs.actor import InternalCallers, internal_guard
from slipway_libs.tenancy import tenant_scope
from slipway_scheduler.usecases import schedules


def build_router(pool: asyncpg.Pool, internal_callers: InternalCallers) -> APIRouter:
    router = APIRouter(
        prefix="/internal/v1",
        dependencies=[Depends(internal_guard(internal_callers)), Depends(tenant_scope())],
    )
    tx = functools.partial(db.transaction, pool)

    @router.get("/environments/{environment_id}/schedule")
    async def environment_schedule(environment_id: uuid.UUID) -> dict[str, Any]:
        """The next start and stop of the environment's deployment rule, and the next run of
        each of its cron jobs."""
        async with tx() as conn:
            return await schedules.environment_schedule(conn, environment_id)

    return router
