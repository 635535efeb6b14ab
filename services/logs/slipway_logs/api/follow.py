"""Following a stream as Server-Sent Events: ``GET /internal/v1/{deployments|services}/{id}/logs
/stream`` (the gateway sends the public ``…/logs?follow=true`` here).

Routes of their own rather than ``follow=true`` on the read routes: the answer is another media
type (``text/event-stream``, no JSON page schema) that holds its connection open, and the
gateway must stream it rather than read it whole, so it chooses the route anyway.

Events: ``line`` (``id:`` the cursor, ``data:`` the line as the read API answers it),
``skipped`` (``{"count", "from_cursor", "to_cursor"}``: read ``after=from_cursor`` to get them),
``resume`` (the connection's lifetime is over: reconnect with ``Last-Event-ID``), ``end`` (the
deployment has ended: ``{"status"}``); a comment line as heartbeat. The first comment,
``: following``, comes once the follow is subscribed: any line committed after it is sent.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from datetime import datetime
from typing import Annotated, Literal

import asyncpg
from fastapi import APIRouter, Depends, Header, Query
from starlette.background import BackgroundTask
from starlette.responses import StreamingResponse

from slipway_libs.actor import InternalCallers, internal_guard
from slipway_libs.errors import BusinessError, InvalidInput
from slipway_libs.tenancy import current_organization, tenant_scope
from slipway_logs.adapters.line_feed import LineFeed
from slipway_logs.api.routes import as_utc
from slipway_logs.api.schemas import line_out
from slipway_logs.domain.follow import LineFilter, Places, Skipped
from slipway_logs.domain.lines import Line, StreamKind
from slipway_logs.domain.paging import MAX_LIMIT, MAX_QUERY_CHARS
from slipway_logs.usecases import follow
from slipway_logs.usecases.follow import End, Expired, FollowLimits, FollowRequest

DEFAULT_TAIL = 100
_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
_RETRY_AFTER_S = "5"
# lines gathered into one chunk at most (a longer line is a chunk of its own)
_FLUSH_BYTES = 64 * 1024


def _request(
    since: datetime | None = None,
    stream: Literal["stdout", "stderr", "system"] | None = None,
    q: Annotated[str | None, Query(min_length=1, max_length=MAX_QUERY_CHARS)] = None,
    tail: Annotated[int, Query(ge=0, le=MAX_LIMIT)] = DEFAULT_TAIL,
    after: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> tuple[LineFilter, int, int | None]:
    if q is not None and any(ord(c) < 32 or ord(c) == 127 for c in q):
        raise InvalidInput("LOGS_BAD_SEARCH", "q cannot hold control characters.", field="q")
    # as the plain read: no offset reads as UTC, and a time that is no instant in UTC is a 422
    # here, before the stream opens (it broke the stream after its 200)
    since = as_utc(since, "since")
    resume = _cursor(last_event_id) if last_event_id else after
    return LineFilter(stream=stream, q=q, since=since), tail, resume


def _cursor(value: str) -> int:
    # ASCII digits only: ``str.isdigit`` also takes ``²`` (a header is read as latin-1), which
    # ``int`` refuses (it was a 500)
    if not (value.isascii() and value.isdigit()) or int(value) > 2**63 - 1:
        raise InvalidInput(
            "LOGS_BAD_LAST_EVENT_ID", "Last-Event-ID must be a cursor.", field="last-event-id"
        )
    return int(value)


Params = Annotated[tuple[LineFilter, int, int | None], Depends(_request)]


def build_follow_router(
    pool: asyncpg.Pool,
    feed: LineFeed,
    limits: FollowLimits,
    internal_callers: InternalCallers,
) -> APIRouter:
    router = APIRouter(
        prefix="/internal/v1",
        dependencies=[Depends(internal_guard(internal_callers)), Depends(tenant_scope())],
    )

    places = Places(limits.max_followers)

    def stream(kind: StreamKind, stream_id: uuid.UUID, params: Params) -> StreamingResponse:
        line_filter, tail, after = params
        release = places.take()
        if release is None:
            raise BusinessError(
                "The logs service follows as many streams as it can: try again shortly.",
                code="LOGS_TOO_MANY_FOLLOWERS",
                status_code=503,
                headers={"Retry-After": _RETRY_AFTER_S},
            )
        request = FollowRequest(
            kind=kind,
            stream_id=stream_id,
            organization_id=current_organization.get(),
            line_filter=line_filter,
            tail=tail,
            after=after,
        )
        events = follow.follow(pool, feed, request, limits, pauses=True)
        # released when the stream ends, and after the response in case it never started
        return StreamingResponse(
            _sse(events, release),
            media_type="text/event-stream",
            headers=_HEADERS,
            background=BackgroundTask(release),
        )

    @router.get("/deployments/{deployment_id}/logs/stream")
    async def follow_deployment(deployment_id: uuid.UUID, params: Params) -> StreamingResponse:
        """The deployment's lines, then its new ones, then ``end`` when it has ended."""
        return stream("deployment", deployment_id, params)

    @router.get("/services/{service_id}/logs/stream")
    async def follow_service(service_id: uuid.UUID, params: Params) -> StreamingResponse:
        """The service's live lines, then its new ones."""
        return stream("service", service_id, params)

    return router


async def _sse(
    events: AsyncGenerator[follow.Event, None], release: Callable[[], None]
) -> AsyncIterator[bytes]:
    """The events as SSE, the lines at hand together as one chunk (sent at the follow's
    ``Pause``, or at ``_FLUSH_BYTES``): a write per line, here and again in the gateway that
    relays the chunks, was what following 5,000 lines/s cost. Other events go out at once."""
    gathered: list[bytes] = []
    size = 0
    try:
        async for event in events:
            if not isinstance(event, follow.Pause):
                gathered.append(sse(event))
                size += len(gathered[-1])
            if gathered and (not isinstance(event, Line) or size >= _FLUSH_BYTES):
                yield b"".join(gathered)
                gathered.clear()
                size = 0
        if gathered:
            yield b"".join(gathered)
    finally:
        release()
        await events.aclose()


def sse(event: follow.Event) -> bytes:
    """One event in the ``text/event-stream`` format (``data`` is one line of JSON)."""
    body: dict[str, object]
    if isinstance(event, follow.Pause):
        return b""  # nothing to send: where the gathered lines go out
    if isinstance(event, follow.Following):
        # a first comment, once subscribed: the client (and the gateway) see the stream open
        # before any line, and every line committed after it will come
        return b": following\n\n"
    if isinstance(event, Line):
        data = line_out(event).model_dump_json()
        return f"id: {event.cursor}\nevent: line\ndata: {data}\n\n".encode()
    if isinstance(event, Skipped):
        body = {
            "count": event.count,
            "from_cursor": event.from_cursor,
            "to_cursor": event.to_cursor,
        }
        return f"event: skipped\ndata: {json.dumps(body)}\n\n".encode()
    if isinstance(event, Expired):
        body = {
            "last_event_id": str(event.last_cursor),
            "after": event.last_cursor,
        }
        # ``id``: an EventSource reconnects with it as ``Last-Event-ID``
        return f"id: {event.last_cursor}\nevent: resume\ndata: {json.dumps(body)}\n\n".encode()
    if isinstance(event, End):
        body = {"status": event.status, "last_cursor": event.last_cursor}
        return f"event: end\ndata: {json.dumps(body)}\n\n".encode()
    return b": heartbeat\n\n"
