"""Following a stream: its stored lines first (the last ``tail`` ones, or all after a cursor),
then its new lines as they commit, with no gap and no repeat at the seam.

The follower subscribes to the feed *before* reading storage: the subscription's ``start`` is
where the feed's reader stood, so storage is read up to ``start`` and every line above it comes
through the backlog. Lines at or below the last cursor sent are never sent again (a resume
``after`` a cursor the feed has not reached yet).

What the follower is sent (``Event``): ``Following`` once subscribed (every line committed
from then on reaches it, so a client that waits for it before writing misses nothing), lines,
``Skipped`` when its backlog overflowed, ``Heartbeat`` after a silence, ``Expired`` when the
connection's lifetime is over (resume with the last cursor), ``End`` when the deployment it
follows has ended; with ``pauses``, ``Pause`` each time nothing more is at hand (a writer sends
what it gathered there: a burst of lines as one write, not one per line).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass

import asyncpg
import structlog

from slipway_libs import db
from slipway_libs.tenancy import current_organization
from slipway_logs.adapters.line_feed import LineFeed, Subscription
from slipway_logs.domain.follow import Deadlines, LineFilter, Skipped
from slipway_logs.domain.lines import Line, StreamKind
from slipway_logs.domain.paging import MAX_LIMIT, LogQuery, Page
from slipway_logs.usecases import reads


@dataclass(frozen=True, kw_only=True)
class FollowRequest:
    kind: StreamKind
    stream_id: uuid.UUID
    organization_id: uuid.UUID | None
    line_filter: LineFilter
    tail: int  # stored lines to send first when ``after`` is None (0: none)
    after: int | None  # resume: send every line after this cursor


@dataclass(frozen=True, kw_only=True)
class FollowLimits:
    backlog_lines: int
    backlog_bytes: int | None = None  # of the lines' text, on top of their count
    # follows this process serves at once (each holds a connection and a backlog)
    max_followers: int = 1000
    heartbeat_s: float
    lifetime_s: float
    # a deployment's last lines may be stored after its end was (another topic): ``end`` waits
    # this long after the end was recorded, sending what comes meanwhile
    end_grace_s: float = 2.0


@dataclass(frozen=True)
class Following:
    pass


@dataclass(frozen=True)
class Heartbeat:
    pass


@dataclass(frozen=True)
class Expired:
    last_cursor: int  # resume after it (``Last-Event-ID``)


@dataclass(frozen=True)
class End:
    status: str
    last_cursor: int


@dataclass(frozen=True)
class Pause:
    """Nothing more to send until the feed brings something (only with ``pauses``)."""


Event = Following | Line | Skipped | Heartbeat | Expired | End | Pause

_PAGE = 1000

log = structlog.get_logger(__name__)


async def follow(
    pool: asyncpg.Pool,
    feed: LineFeed,
    request: FollowRequest,
    limits: FollowLimits,
    *,
    clock: Callable[[], float] = time.monotonic,
    pauses: bool = False,
) -> AsyncGenerator[Event, None]:
    subscription = await feed.subscribe(
        request.kind,
        request.stream_id,
        organization_id=request.organization_id,
        line_filter=request.line_filter,
        capacity=limits.backlog_lines,
        max_bytes=limits.backlog_bytes,
    )
    try:
        yield Following()
        last = request.after or 0
        async for line in _stored(pool, request, upto=subscription.start):
            yield line
            last = line.cursor
        last = max(last, subscription.start)  # a resume needs nothing up to here again
        deadlines = Deadlines(
            started=clock(), heartbeat_s=limits.heartbeat_s, lifetime_s=limits.lifetime_s
        )
        async for event in _live(subscription, deadlines, clock, limits.end_grace_s, pauses):
            if isinstance(event, Line):
                if event.cursor <= last:
                    continue
                last = event.cursor
            elif isinstance(event, Skipped):
                # a follower that reads slower than its stream grows (the counter to watch)
                log.info(
                    "logs.follow.skipped",
                    stream_id=str(request.stream_id),
                    lines=event.count,
                    from_cursor=event.from_cursor,
                )
            elif isinstance(event, Expired | End):
                yield Expired(last) if isinstance(event, Expired) else End(event.status, last)
                return
            yield event
    finally:
        feed.unsubscribe(subscription)


async def _live(
    subscription: Subscription,
    deadlines: Deadlines,
    clock: Callable[[], float],
    end_grace_s: float,
    pauses: bool,
) -> AsyncIterator[Event]:
    """New lines (and gaps) as the feed brings them, heartbeats in silences, until the lifetime
    is over or the deployment has ended (``Expired``/``End`` carry no cursor here). The clock
    is the feed's (monotonic seconds)."""
    while True:
        taken = subscription.take()
        for item in taken:
            yield item
        if taken:
            deadlines.sent(clock())
            continue
        wait_s = deadlines.wait_s(clock())
        if subscription.end is not None:
            status, since = subscription.end
            grace_left = since + end_grace_s - clock()
            if grace_left <= 0:
                yield End(status, 0)
                return
            wait_s = min(wait_s, grace_left)
        due = deadlines.due(clock())
        if due == "expired":
            yield Expired(0)
            return
        if due == "heartbeat":
            yield Heartbeat()
            deadlines.sent(clock())
            continue
        if pauses:
            yield Pause()
        await subscription.wait(wait_s)


async def _stored(pool: asyncpg.Pool, request: FollowRequest, *, upto: int) -> AsyncIterator[Line]:
    """The stored lines the follower asked for, up to the cursor ``upto`` (inclusive)."""
    if upto < 1:
        return
    filters = request.line_filter
    if request.after is None:
        if request.tail < 1:
            return
        query = LogQuery(
            before=upto + 1,
            limit=min(request.tail, MAX_LIMIT),
            stream=filters.stream,
            q=filters.q,
            since=filters.since,
        )
        for line in (await _page(pool, request, query)).items:
            yield line
        return
    after = request.after
    while after < upto:
        query = LogQuery(
            after=after,
            before=upto + 1,
            limit=_PAGE,
            stream=filters.stream,
            q=filters.q,
            since=filters.since,
        )
        page = await _page(pool, request, query)
        for line in page.items:
            yield line
        if page.next_cursor is None:
            return
        after = page.next_cursor


async def _page(pool: asyncpg.Pool, request: FollowRequest, query: LogQuery) -> Page:
    """One page of storage as the follower's organization sees it (bound here, around the read
    only: a follow runs in its caller's context, which it must not change)."""
    token = current_organization.set(request.organization_id)
    try:
        async with db.transaction(pool) as conn:
            return await reads.read(
                conn,
                request.kind,
                request.stream_id,
                query,
                organization_id=request.organization_id,
            )
    finally:
        current_organization.reset(token)
