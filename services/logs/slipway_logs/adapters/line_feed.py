"""New lines of the streams being followed, read once per process and fanned out to followers.

One LISTEN connection per process (``listen``) hears every ingest commit; for each stream that
has at least one follower, one reader task reads the lines after the last cursor it read (once,
whatever the number of followers) and offers them to each follower's bounded ``Backlog``.

Invariants:
- A subscription's ``start`` is the reader's position when it joined, taken with no await in
  between: every line above ``start`` reaches its backlog (kept, or counted in a ``Skipped``);
  the lines up to ``start`` are the follower's to read from storage. That is the seam.
- A reader only ever reads committed lines, in cursor order, and a stream's cursors commit in
  order (the ingest's counter lock): a line above the reader's position never appears later.
- A notification only shortens a wait: a reader also reads every ``poll_s`` (a notification is
  lost while the LISTEN connection reconnects).
- A reader never waits on a follower: offering to a full backlog drops the line there.
- Lines, the deployment's end and the reader's position (``start``, which counts the stream's
  lines) go only to followers of the stream's organization (a follower bound to none, the
  platform, gets them all; a stream whose organization is not known yet is nobody's): the
  gateway checks access, this checks again. Another organization's follower gets ``start`` 0
  and never an end: it sees what a read of the stream shows it, nothing.
- A deployment's end (``ended_deployments``) reaches its followers as ``Subscription.end``
  (the status, and since when on the monotonic clock): from its notification, or read when the
  stream is first followed and at every round of its reader (a notification may be lost).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from dataclasses import dataclass, field

import asyncpg
import structlog

from slipway_libs import db, leadership, retry
from slipway_libs.tenancy import current_organization
from slipway_logs.db import queries
from slipway_logs.domain import lines as domain
from slipway_logs.domain.follow import Backlog, LineFilter, Skipped
from slipway_logs.domain.lines import Line, StreamKind
from slipway_logs.domain.paging import LogQuery

log = structlog.get_logger(__name__)


@dataclass(eq=False, kw_only=True)
class Subscription:
    """One follower's place in a stream: its backlog and what wakes it."""

    stream_id: uuid.UUID
    organization_id: uuid.UUID | None
    line_filter: LineFilter
    start: int
    backlog: Backlog
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    end: tuple[str, float] | None = None  # the deployment's status, since (monotonic s)

    def offer(self, lines: list[Line]) -> None:
        kept = False
        for line in lines:
            if self.line_filter.accepts(line):
                self.backlog.offer(line)
                kept = True
        if kept:
            self.ready.set()

    def take(self) -> list[Line | Skipped]:
        self.ready.clear()
        return self.backlog.take()

    async def wait(self, timeout_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self.ready.wait()


@dataclass(eq=False, kw_only=True)
class _Stream:
    kind: StreamKind
    stream_id: uuid.UUID
    position: int  # the newest cursor read (or the head when the first follower came)
    wake: leadership.Wake
    organization_id: uuid.UUID | None = None
    end: tuple[str, float] | None = None
    followers: set[Subscription] = field(default_factory=set)
    task: asyncio.Task[None] | None = None


class LineFeed:
    def __init__(
        self, pool: asyncpg.Pool, dsn: str, *, poll_s: float = 2.0, page: int = 1000
    ) -> None:
        self._pool, self._dsn = pool, dsn
        self._poll_s, self._page = poll_s, page
        self._streams: dict[uuid.UUID, _Stream] = {}

    @property
    def followers(self) -> int:
        return sum(len(s.followers) for s in self._streams.values())

    async def subscribe(
        self,
        kind: StreamKind,
        stream_id: uuid.UUID,
        *,
        organization_id: uuid.UUID | None,
        line_filter: LineFilter,
        capacity: int,
        max_bytes: int | None = None,
    ) -> Subscription:
        stream = self._streams.get(stream_id)
        if stream is None:
            organization, head, end = await self._state(kind, stream_id)
            stream = self._streams.get(stream_id)  # another follower may have come meanwhile
            if stream is None:
                stream = self._start(kind, stream_id, head, organization)
                stream.end = end
        # no await from here on: ``start`` is exactly where the reader stands
        start = stream.position if _entitled(organization_id, stream) else 0
        subscription = Subscription(
            stream_id=stream_id,
            organization_id=organization_id,
            line_filter=line_filter,
            start=start,
            backlog=Backlog(capacity=capacity, start=start, max_bytes=max_bytes),
            end=stream.end if _entitled(organization_id, stream) else None,
        )
        stream.followers.add(subscription)
        log.info("logs.follow.started", stream_id=str(stream_id), followers=self.followers)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        stream = self._streams.get(subscription.stream_id)
        if stream is None:
            return
        stream.followers.discard(subscription)
        log.info(
            "logs.follow.ended", stream_id=str(subscription.stream_id), followers=self.followers
        )
        if not stream.followers:
            del self._streams[stream.stream_id]
            if stream.task is not None:
                stream.task.cancel()

    async def listen(self) -> None:
        """Beside the API, for the life of the process (readers poll while it reconnects)."""
        await retry.forever(
            lambda: leadership.follow(
                dsn=self._dsn,
                listeners={
                    queries.NOTIFY_CHANNEL: self._on_notify,
                    queries.ENDED_CHANNEL: self._on_ended,
                },
                on_listening=self._wake_all,
            ),
            event="logs.follow.listen_failed",
            backoff=retry.Backoff(self._poll_s, self._poll_s),
        )

    def _wake_all(self) -> None:
        # subscribed (again): lines written while nobody listened were not notified
        for stream in self._streams.values():
            stream.wake.set()

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            note = json.loads(payload)
            stream = self._streams.get(uuid.UUID(note["stream_id"]))
            cursor = int(note["cursor"])
        except (ValueError, KeyError, TypeError):
            log.warning("logs.follow.bad_notification", payload=payload)
            return
        if stream is not None and cursor > stream.position:
            stream.wake.set()

    def _on_ended(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        deployment, _, status = payload.partition(":")
        try:
            stream = self._streams.get(uuid.UUID(deployment))
        except ValueError:
            log.warning("logs.follow.bad_notification", payload=payload)
            return
        if stream is None or stream.end is not None:
            return
        if stream.organization_id is None:
            stream.wake.set()  # whose end it is: the reader reads it with the end
            return
        self._ended(stream, (status, time.monotonic()))

    def _ended(self, stream: _Stream, end: tuple[str, float]) -> None:
        stream.end = end
        for follower in stream.followers:
            if _entitled(follower.organization_id, stream):
                follower.end = end
                follower.ready.set()

    def _start(
        self,
        kind: StreamKind,
        stream_id: uuid.UUID,
        head: int,
        organization_id: uuid.UUID | None,
    ) -> _Stream:
        stream = _Stream(
            kind=kind,
            stream_id=stream_id,
            position=head,
            wake=leadership.Wake(self._poll_s),
            organization_id=organization_id,
        )
        self._streams[stream_id] = stream
        stream.wake.set()  # read once at once: lines may have committed since the head was read
        stream.task = asyncio.create_task(self._read(stream), name=f"logs-feed-{stream_id}")
        return stream

    async def _read(self, stream: _Stream) -> None:
        """The stream's reader, until its last follower leaves (cancelled)."""
        current_organization.set(None)  # the platform reads; followers are checked per line
        while True:
            await stream.wake.wait()
            stream.wake.clear()  # before reading: a commit during the read wakes it again
            try:
                await self._catch_up(stream)
                if stream.kind == "deployment" and stream.end is None:
                    organization, _, end = await self._state(stream.kind, stream.stream_id)
                    if end is not None:
                        stream.organization_id = stream.organization_id or organization
                        self._ended(stream, end)
            except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError) as exc:
                log.warning(
                    "logs.follow.read_failed", stream_id=str(stream.stream_id), error=repr(exc)
                )
            except Exception:
                # a bug, loudly: the stream's followers would otherwise wait for nothing,
                # silently; the next round tries again (after ``poll_s``)
                log.exception("logs.follow.reader_failed", stream_id=str(stream.stream_id))

    async def _catch_up(self, stream: _Stream) -> None:
        while True:
            page = await self._lines_after(stream)
            if not page:
                return
            if stream.organization_id is None:
                stream.organization_id, _, _ = await self._state(stream.kind, stream.stream_id)
            # no await from here to the new position: a subscriber joins before or after
            for follower in stream.followers:
                if _entitled(follower.organization_id, stream):
                    follower.offer(page)
            stream.position = page[-1].cursor
            if len(page) < self._page:
                return

    async def _lines_after(self, stream: _Stream) -> list[Line]:
        query = LogQuery(after=stream.position, limit=self._page)
        async with db.transaction(self._pool) as conn:
            cursors = await queries.read_cursors(conn, stream.stream_id, query, None)
            if not cursors:
                return []
            parts = await queries.read_parts(conn, stream.stream_id, cursors[: self._page])
        return domain.join(parts)

    async def _state(
        self, kind: StreamKind, stream_id: uuid.UUID
    ) -> tuple[uuid.UUID | None, int, tuple[str, float] | None]:
        """The stream's organization, head and (a deployment's) end, as the platform sees them."""
        token = current_organization.set(None)
        try:
            async with db.transaction(self._pool) as conn:
                organization = await queries.stream_organization(conn, kind, stream_id)
                head = await queries.stream_head(conn, kind, stream_id)
                ended = (
                    await queries.deployment_end(conn, stream_id) if kind == "deployment" else None
                )
        finally:
            current_organization.reset(token)
        if ended is None:
            return organization, head or 0, None
        # a deployment that ended before any line was stored: its end says whose it is
        return organization or ended[2], head or 0, (ended[0], time.monotonic() - ended[1])


def _entitled(organization_id: uuid.UUID | None, stream: _Stream) -> bool:
    """Whether a follower bound to ``organization_id`` may see anything of ``stream``."""
    return organization_id is None or organization_id == stream.organization_id
