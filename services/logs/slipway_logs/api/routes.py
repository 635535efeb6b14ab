"""The logs service's internal HTTP API (the gateway authorizes first, then forwards here).

Routes are thin: parse the query, open the tenant-scoped transaction, call the use case."""

from __future__ import annotations

import functools
import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

import asyncpg
from fastapi import APIRouter, Depends, Query

from slipway_libs import db
from slipway_libs.actor import InternalCallers, internal_guard
from slipway_libs.errors import InvalidInput
from slipway_libs.tenancy import current_organization, tenant_scope
from slipway_logs.api.schemas import (
    PageOut,
    RetentionIn,
    RetentionOut,
    page_out,
    retention_out,
)
from slipway_logs.domain.lines import StreamKind
from slipway_logs.domain.paging import DEFAULT_LIMIT, MAX_LIMIT, MAX_QUERY_CHARS, LogQuery
from slipway_logs.usecases import reads, retention

Cursor = Annotated[int | None, Query(ge=0, le=2**63 - 1)]


def _query(
    since: datetime | None = None,
    until: datetime | None = None,
    stream: Literal["stdout", "stderr", "system"] | None = None,
    q: Annotated[str | None, Query(min_length=1, max_length=MAX_QUERY_CHARS)] = None,
    tail: Annotated[int | None, Query(ge=1, le=MAX_LIMIT)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    after: Cursor = None,
    before: Cursor = None,
) -> LogQuery:
    return LogQuery(
        since=as_utc(since, "since"),
        until=as_utc(until, "until"),
        stream=stream,
        q=q,
        tail=tail,
        limit=limit,
        after=after,
        before=before,
    )


def as_utc(moment: datetime | None, name: str) -> datetime | None:
    """A time given without an offset is read as UTC. A time that is no instant in UTC (year 1
    at +14:00, year 9999 at -14:00) is refused here: the driver cannot send it (it was a 500)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise InvalidInput(
            "LOGS_BAD_TIME", f"{name} is out of the range of times.", field=name
        ) from None


Params = Annotated[LogQuery, Depends(_query)]


def build_router(
    pool: asyncpg.Pool, internal_callers: InternalCallers, *, retention_days: int = 30
) -> APIRouter:
    router = APIRouter(
        prefix="/internal/v1",
        dependencies=[Depends(internal_guard(internal_callers)), Depends(tenant_scope())],
    )
    tx = functools.partial(db.transaction, pool)

    async def read(kind: StreamKind, stream_id: uuid.UUID, query: LogQuery) -> PageOut:
        async with tx() as conn:
            page = await reads.read(
                conn, kind, stream_id, query, organization_id=current_organization.get()
            )
        return page_out(page)

    @router.get("/deployments/{deployment_id}/logs")
    async def deployment_logs(deployment_id: uuid.UUID, query: Params) -> PageOut:
        """The deployment's build and deploy lines, in cursor order."""
        return await read("deployment", deployment_id, query)

    @router.get("/services/{service_id}/logs")
    async def service_logs(service_id: uuid.UUID, query: Params) -> PageOut:
        """The service's live lines (and its job runs'), in cursor order."""
        return await read("service", service_id, query)

    @router.get("/organizations/{org_id}/log-retention")
    async def log_retention(org_id: uuid.UUID) -> RetentionOut:
        async with tx() as conn:
            found = await retention.organization_retention(
                conn, org_id, default_days=retention_days
            )
        return retention_out(found)

    @router.put("/organizations/{org_id}/log-retention")
    async def set_log_retention(org_id: uuid.UUID, body: RetentionIn) -> RetentionOut:
        """Keep the organization's lines fewer days (the worker deletes the older ones)."""
        async with tx() as conn:
            done = await retention.set_organization_retention(
                conn, org_id, body.days, default_days=retention_days
            )
        assert done is not None
        return retention_out(done)

    return router
