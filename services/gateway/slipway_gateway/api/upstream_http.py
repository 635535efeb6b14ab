"""A lean keep-alive HTTP/1.1 client for the requests the gateway forwards to the services.

aiohttp's client was a quarter of the gateway's CPU per forwarded read (issue 15); this one is an
``asyncio.Protocol`` around httptools' parser (C) and a small pool, and does only what
forwarding needs: no cookies, no redirects, no compression, no TLS (internal calls are http).

Invariants:
- At most ``connections`` connections are open in all (in use, idle or being opened). A request
  takes an idle connection of its origin (the last one released first), else opens one (closing
  another origin's idle one when the limit is reached), else waits for one to be released. The
  wait and the connect together last at most ``connect_timeout_s``: then ``UpstreamBusy``, and
  the request was never sent. A failed connect is ``ConnectFailed``, never sent again here.
- A connection goes back to the pool only after a complete answer that allows keep-alive and
  with nothing past it. On any error, timeout or cancellation it is closed: a half-read
  connection is never reused.
- An idle connection the upstream closed leaves the pool when it closes. One that dies under a
  request before any byte of the answer came raises ``StaleConnection``; when it was a reused
  one and the method is idempotent, the request is sent once more, on a fresh connection. A
  request that is not idempotent is never sent twice: the upstream may have read it.
- An idle connection is not used after ``KEEPALIVE_S``: the services close theirs after 75 s
  (``slipway_libs.service.KEEP_ALIVE_S``), and a request written as they close it would be lost
  (a POST is not sent again: 503) — so the gateway lets go of it well before they do.
- No byte of the answer for ``read_timeout_s``: ``TimeoutError``.
- Chunked trailers are dropped: they must not stand in for the answer's headers.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import httptools
import structlog
from multidict import CIMultiDict

log = structlog.get_logger(__name__)

KEEPALIVE_S = 15.0  # as aiohttp's: well under the services' 75 s
# uvloop's clock and timers move in whole milliseconds: a timer may fire up to one early
_TIMER_SLACK_S = 0.001
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# methods whose request has a body by definition: an empty one is said so (Content-Length: 0)
_BODY_EXPECTED = frozenset({"POST", "PUT", "PATCH"})
# the framing of the request is this client's own: a caller's value could split or smuggle it
_OWN_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection"}
    # and the hop-by-hop ones that would change how the upstream reads the connection
    | {"expect", "upgrade", "te", "trailer", "keep-alive"}
)
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_UNSAFE_VALUE = re.compile(r"[\r\n\0]")
_UNSAFE_TARGET = re.compile(r"[\x00-\x20\x7f]")


class UpstreamError(Exception):
    """The request got no answer from the upstream."""


class UpstreamBusy(UpstreamError):
    """No connection came free, or could be opened, in time: the request was not sent."""


class ConnectFailed(UpstreamError):
    """The upstream could not be connected to (refused, unreachable, unknown host)."""


class Disconnected(UpstreamError):
    """The connection ended before the answer was complete."""


class StaleConnection(Disconnected):
    """The connection ended before any byte of the answer came: usually a kept-alive one the
    upstream closed while it was idle. The upstream may have read the request."""


class MalformedAnswer(UpstreamError):
    """The upstream's answer was not HTTP/1.1 this client reads."""


@dataclass(frozen=True, slots=True)
class Origin:
    host: str
    port: int

    def authority(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def split_url(url: str) -> tuple[Origin, str]:
    """``http://host:port/prefix`` → its origin and the path prefix every target starts with."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(
            f"Upstream URL {url!r}: only http://host[:port] is supported (internal calls are "
            "plain HTTP)."
        )
    return Origin(parts.hostname, parts.port or 80), parts.path


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: CIMultiDict[str]  # repeated headers kept, in their order
    body: bytes


def request_head(
    method: str, target: str, origin: Origin, headers: Mapping[str, str], body_length: int
) -> bytes:
    """The request line and headers. Anything that could end a line or the head early is
    refused (ValueError): the callers validate what they pass on, this is defence in depth."""
    if not _TOKEN.fullmatch(method) or not target or _UNSAFE_TARGET.search(target):
        raise ValueError(f"Refusing to send {method!r} {target!r}: not a valid request line.")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {origin.authority()}"]
    for name, value in headers.items():
        if not _TOKEN.fullmatch(name) or name.lower() in _OWN_HEADERS:
            raise ValueError(f"Refusing to send the header name {name!r}.")
        if _UNSAFE_VALUE.search(value):
            raise ValueError(f"Refusing to send the {name} header: CR, LF or NUL in its value.")
        lines.append(f"{name}: {value}")
    if body_length or method in _BODY_EXPECTED:
        lines.append(f"Content-Length: {body_length}")
    lines.append("\r\n")
    return "\r\n".join(lines).encode()  # UTF-8, as aiohttp sent them


class UpstreamPool:
    """Kept-alive connections to the upstreams, ``connections`` at most in all."""

    def __init__(
        self,
        *,
        connections: int,
        connect_timeout_s: float,
        read_timeout_s: float,
        keepalive_s: float = KEEPALIVE_S,
    ) -> None:
        if connections < 1:
            raise ValueError("An upstream pool needs at least one connection.")
        self._limit = connections
        self._connect_timeout_s = connect_timeout_s
        self._read_timeout_s = read_timeout_s
        self._keepalive_s = keepalive_s
        self._open = 0  # counted against the limit: in use, idle or being opened
        self._connections: set[_Connection] = set()
        self._idle: dict[Origin, list[_Connection]] = {}
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._closed = False

    async def request(
        self,
        origin: Origin,
        method: str,
        target: str,
        *,
        headers: Mapping[str, str],
        body: bytes = b"",
    ) -> Answer:
        if self._closed:
            raise RuntimeError("The upstream pool is closed.")
        head = request_head(method, target, origin, headers, len(body))
        payload = head + body if body else head  # one write: one segment for a small request
        head_only = method == "HEAD"
        connection = await self._acquire(origin, fresh=False)
        try:
            return await self._exchange(connection, payload, head_only=head_only)
        except StaleConnection as exc:
            if not connection.reused or method not in IDEMPOTENT:
                raise
            log.info("gateway.upstream_stale_connection", target=target, error=repr(exc))
        connection = await self._acquire(origin, fresh=True)
        return await self._exchange(connection, payload, head_only=head_only)

    async def aclose(self) -> None:
        self._closed = True
        self._idle.clear()
        for connection in list(self._connections):
            self._forget(connection)

    async def _exchange(
        self, connection: _Connection, payload: bytes, *, head_only: bool
    ) -> Answer:
        try:
            answer = await connection.send(payload, head_only=head_only)
        except BaseException:  # cancelled too: whatever is left of the answer is unread
            self._discard(connection)
            raise
        if connection.reusable and not self._closed:
            connection.reused = connection.idle = True
            connection.idle_since = asyncio.get_running_loop().time()
            self._idle.setdefault(connection.origin, []).append(connection)
            self._wake()
        else:
            self._discard(connection)
        return answer

    async def _acquire(self, origin: Origin, *, fresh: bool) -> _Connection:
        if self._closed:
            raise RuntimeError("The upstream pool is closed.")
        if not fresh and (idle := self._take_idle(origin)) is not None:
            return idle  # the usual case, without arming a timer
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                while True:
                    if not fresh and (idle := self._take_idle(origin)) is not None:
                        return idle
                    if self._open < self._limit or self._evict_idle():
                        return await self._connect(origin)
                    await self._wait()
        except TimeoutError:  # the connect's own OSErrors are ConnectFailed by now
            raise UpstreamBusy(
                f"No connection to {origin.authority()} within {self._connect_timeout_s} s."
            ) from None

    def _take_idle(self, origin: Origin) -> _Connection | None:
        stack = self._idle.get(origin)
        kept_since = asyncio.get_running_loop().time() - self._keepalive_s
        while stack:
            connection = stack.pop()  # the newest: when it is too old, so are those under it
            connection.idle = False
            if connection.reusable and connection.idle_since > kept_since:
                return connection
            # closed by the upstream (its close not seen yet), or idle so long that the
            # upstream may be closing it now
            self._discard(connection)
        return None

    def _evict_idle(self) -> bool:
        """Closes the oldest idle connection of some origin, making room for another's."""
        for stack in self._idle.values():
            if stack:
                oldest = stack.pop(0)
                oldest.idle = False
                self._forget(oldest)  # no wake: the caller takes the room at once
                return True
        return False

    async def _connect(self, origin: Origin) -> _Connection:
        self._open += 1
        loop = asyncio.get_running_loop()
        try:
            _, connection = await loop.create_connection(
                lambda: _Connection(origin, self._read_timeout_s, self._idle_lost),
                origin.host,
                origin.port,
            )
        except BaseException as exc:
            self._open -= 1
            self._wake()
            if isinstance(exc, OSError):
                raise ConnectFailed(f"Could not connect to {origin.authority()}: {exc!r}") from exc
            raise
        self._connections.add(connection)
        return connection

    async def _wait(self) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._wake()  # woken, then timed out or cancelled: the turn goes to the next
            raise

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():  # a waiter that timed out is skipped here
                waiter.set_result(None)
                return

    def _idle_lost(self, connection: _Connection) -> None:
        """An idle connection the upstream closed: out of the pool, its room given back."""
        if connection.idle:
            connection.idle = False
            self._idle[connection.origin].remove(connection)
            self._discard(connection)

    def _discard(self, connection: _Connection) -> None:
        if self._forget(connection):
            self._wake()

    def _forget(self, connection: _Connection) -> bool:
        """Closes a connection and stops counting it; False when it was already forgotten."""
        connection.idle = False
        connection.abort()
        if connection not in self._connections:
            return False
        self._connections.remove(connection)
        self._open -= 1
        return True


class _Connection(asyncio.Protocol):
    """One connection and the answer being read on it (httptools calls the ``on_*`` methods)."""

    def __init__(
        self, origin: Origin, read_timeout_s: float, idle_lost: Callable[[_Connection], None]
    ) -> None:
        self.origin = origin
        self.reusable = True  # False once closed, spoiled, or its answer forbade keep-alive
        self.reused = False
        self.idle = False
        self.idle_since = 0.0
        self._read_timeout_s = read_timeout_s
        self._idle_lost = idle_lost
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._answer: asyncio.Future[Answer] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._last_read = 0.0
        self._head_only = False
        self._got_bytes = False
        self._in_trailers = False
        self._status = 0
        self._headers: CIMultiDict[str] = CIMultiDict()
        self._body: list[bytes] = []

    def send(self, payload: bytes, *, head_only: bool) -> asyncio.Future[Answer]:
        assert self._transport is not None and self.reusable
        self._answer = self._loop.create_future()
        self._head_only, self._got_bytes, self._status = head_only, False, 0
        self._transport.write(payload)
        self._last_read = self._loop.time()
        self._timer = self._loop.call_at(self._last_read + self._read_timeout_s, self._check_read)
        return self._answer

    def abort(self) -> None:
        self.reusable = False
        if self._transport is not None:
            self._transport.abort()  # not close(): it would wait to flush to a stalled reader

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, though they are ones
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if not self._reading():  # bytes nobody asked for: out of step, never reuse it
            self.abort()
            return
        self._got_bytes = True
        self._last_read = self._loop.time()
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self._fail(MalformedAnswer(f"{self.origin.authority()} answered: {exc!r}"))

    def eof_received(self) -> None:
        self.reusable = False  # connection_lost follows: the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        self._transport = None
        if not self._reading():
            self._idle_lost(self)
        elif (
            exc is None
            and self._status >= 200
            and "content-length" not in self._headers
            and not self._chunked()
        ):
            self._finish()  # an answer delimited by the close of its connection (not a reset)
        elif self._got_bytes:
            self._fail(Disconnected(f"{self.origin.authority()} closed mid-answer: {exc!r}"))
        else:
            self._fail(StaleConnection(f"{self.origin.authority()} closed unanswered: {exc!r}"))

    # the parser's callbacks

    def on_message_begin(self) -> None:
        if not self._reading():  # a second answer after the whole one
            self.abort()
        self._headers, self._body, self._in_trailers = CIMultiDict(), [], False

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._in_trailers:  # a chunked answer's trailer: never taken for one of its headers
            return
        self._headers.add(name.decode("latin-1"), value.decode("latin-1"))

    def on_headers_complete(self) -> None:
        self._in_trailers = True
        self._status = self._parser.get_status_code()
        if self._head_only and self._status >= 200:
            # the parser would wait for the body its Content-Length announces: none comes, and
            # the parser's state after that is not to be trusted
            self.reusable = False
            self._finish()

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._status < 200:
            return  # an interim answer (100 Continue, 103 Early Hints): the answer follows
        if not self._parser.should_keep_alive():
            self.reusable = False
        self._finish()

    # the answer

    def _reading(self) -> bool:
        return self._answer is not None and not self._answer.done()

    def _chunked(self) -> bool:
        return "chunked" in self._headers.get("transfer-encoding", "").lower()

    def _finish(self) -> None:
        if self._reading():
            assert self._answer is not None
            self._stop_timer()
            self._answer.set_result(Answer(self._status, self._headers, b"".join(self._body)))

    def _fail(self, error: BaseException) -> None:
        self.abort()
        if self._reading():
            assert self._answer is not None
            self._stop_timer()
            self._answer.set_exception(error)

    def _check_read(self) -> None:
        """The read timeout, re-armed rather than moved on every read (cheaper per chunk)."""
        deadline = self._last_read + self._read_timeout_s
        if self._loop.time() >= deadline - _TIMER_SLACK_S:
            self._timer = None
            self._fail(TimeoutError(f"{self.origin.authority()}: silent {self._read_timeout_s} s."))
        else:
            self._timer = self._loop.call_at(deadline, self._check_read)

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
