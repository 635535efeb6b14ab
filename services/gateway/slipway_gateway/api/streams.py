"""Relaying a service's long-lived answer (a log follow's ``text/event-stream``) as it comes.

Authorization happened before (``Gateway.handle``, exactly as for the route's plain read); this
only opens the upstream stream and copies its bytes, unbuffered, until either side closes.

- A client of their own, apart from ``Upstreams.http``: each follow holds a connection for as
  long as it lasts, and must not take the pool the short requests share (nor its read
  timeout: a stream may be silent between heartbeats). It times out connecting, never reading.
- Each upstream stream's receive buffer is fixed (``STREAM_RECEIVE_BUFFER``): Linux otherwise
  grows it (up to ``net.ipv4.tcp_rmem``'s maximum, 32 MiB on some hosts) for a follower that
  stops reading, so the kernel memory a stalled follow pins in the gateway is bounded, and the
  logs service finds out sooner that the follower lags (it skips lines for it).
- An upstream answer that is not a stream (a 4xx with its error) is read whole and passed on.
- The upstream connection is closed when the client goes (the relay is cancelled) or the
  upstream ends the stream.
- A principal holds at most ``max_per_principal`` follows at once (SSE and WebSocket
  together, in this gateway process): one more is a 429 ``TOO_MANY_FOLLOWS`` with Retry-After,
  before anything is opened upstream.
"""

from __future__ import annotations

import json
import socket
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import httpx
import structlog
from starlette.background import BackgroundTask
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response, StreamingResponse

from slipway_gateway.api.proxy import on_behalf, passed_on, upstream_failure
from slipway_libs.actor import Actor
from slipway_libs.errors import BusinessError

log = structlog.get_logger(__name__)

_STREAM_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
_PASSED_BACK = ("content-type", "retry-after")
_RETRY_AFTER_S = "5"
# plenty for a stream that is read (loopback or a LAN), little for one that is not
STREAM_RECEIVE_BUFFER = 256 * 1024


class UpstreamStreams:
    def __init__(
        self,
        *,
        urls: Mapping[str, str],
        internal_token: str | None,
        connect_timeout_s: float = 5.0,
        max_per_principal: int = 20,
    ) -> None:
        self.urls = dict(urls)
        self.max_per_principal = max_per_principal
        self._held: Counter[str] = Counter()
        self.internal_token = internal_token
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(
                connect=connect_timeout_s, read=None, write=connect_timeout_s, pool=None
            ),
            transport=httpx.AsyncHTTPTransport(
                # the client's own ``limits`` do not reach a transport it is given
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=0),
                socket_options=[(socket.SOL_SOCKET, socket.SO_RCVBUF, STREAM_RECEIVE_BUFFER)],
            ),
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def open(
        self, request: Request, *, service: str, path: str, actor: Actor | None
    ) -> Response:
        upstream_request = self.http.build_request(
            "GET",
            f"{self.urls[service]}{path}",
            params=request.query_params,
            headers=self._headers(request, actor),
        )
        release = self.hold(actor)
        try:
            upstream = await self._send(upstream_request, service)
        except BaseException:
            release()
            raise
        passed = {k: v for k, v in upstream.headers.items() if k.lower() in _PASSED_BACK}
        if upstream.status_code != 200:
            release()
            try:
                body = await upstream.aread()
            finally:
                await upstream.aclose()
            return Response(body, status_code=upstream.status_code, headers=passed)

        async def close() -> None:  # after the response, in case the relay never started
            release()
            await upstream.aclose()

        return StreamingResponse(
            _relay(upstream, release),
            status_code=200,
            headers={**passed, **_STREAM_HEADERS},
            background=BackgroundTask(close),
        )

    async def _send(self, upstream_request: httpx.Request, service: str) -> httpx.Response:
        try:
            return await self.http.send(upstream_request, stream=True)
        except httpx.HTTPError as exc:
            raise upstream_failure(service, exc, event="gateway.stream_unavailable") from None

    async def events(
        self,
        connection: HTTPConnection,
        *,
        service: str,
        path: str,
        actor: Actor | None,
        params: Mapping[str, str],
    ) -> AsyncIterator[dict[str, Any]]:
        """The upstream stream's events as ``{"event", "id", "data"}`` (a heartbeat is
        ``{"event": "heartbeat"}``), for a relay that is not SSE (a WebSocket). An upstream
        refusal raises its error (``BusinessError``) before the first event."""
        release = self.hold(actor)
        try:
            async with self.http.stream(
                "GET",
                f"{self.urls[service]}{path}",
                params=params,
                headers=self._headers(connection, actor),
            ) as upstream:
                if upstream.status_code != 200:
                    raise _refusal(upstream.status_code, await upstream.aread())
                async for event in _parsed(upstream.aiter_lines()):
                    yield event
        except httpx.HTTPError as exc:
            log.warning("gateway.stream_unavailable", service=service, error=repr(exc))
            raise BusinessError(
                f"The {service} service is unavailable.",
                code="UPSTREAM_UNAVAILABLE",
                status_code=503,
            ) from None
        finally:
            release()

    def hold(self, actor: Actor | None) -> Callable[[], None]:
        """A place among the principal's follows (429 when they are all taken) and its release
        (once, however many times it is called)."""
        key = "" if actor is None else f"{actor.type}:{actor.id}"
        if self._held[key] >= self.max_per_principal:
            raise BusinessError(
                f"At most {self.max_per_principal} follows at once: close one or retry later.",
                code="TOO_MANY_FOLLOWS",
                status_code=429,
                headers={"Retry-After": _RETRY_AFTER_S},
            )
        self._held[key] += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._held[key] -= 1
                if not self._held[key]:
                    del self._held[key]

        return release

    def _headers(self, request: HTTPConnection, actor: Actor | None) -> dict[str, str]:
        return {
            "accept": "text/event-stream",
            **on_behalf(self.internal_token, actor),
            **passed_on(request, ("last-event-id",)),
        }


async def _relay(upstream: httpx.Response, release: Callable[[], None]) -> AsyncIterator[bytes]:
    """The upstream's bytes as they arrive; closed (and the follow's place released) however
    the relay ends (a client that left cancels it at its next await)."""
    try:
        async for chunk in upstream.aiter_raw():
            yield chunk
    except httpx.HTTPError as exc:  # the upstream went away: end the client's stream too
        log.info("gateway.stream_upstream_ended", error=repr(exc))
    finally:
        release()
        await upstream.aclose()


async def _parsed(lines: AsyncIterator[str]) -> AsyncIterator[dict[str, Any]]:
    """Server-Sent Events from their lines (the logs service's: one ``data`` line of JSON)."""
    event: dict[str, Any] = {}
    async for line in lines:
        if line == "":
            if "data" in event:
                yield {"event": event.get("event", "message"), **event}
            event = {}
        elif line.startswith(": heartbeat"):
            yield {"event": "heartbeat"}
        elif not line.startswith(":"):
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            event[field] = json.loads(value) if field == "data" else value


def _refusal(status_code: int, body: bytes) -> BusinessError:
    try:
        error = json.loads(body)["error"]
        return BusinessError(error["message"], code=error["code"], status_code=status_code)
    except (ValueError, KeyError, TypeError):
        return BusinessError(
            "The logs service refused the stream.", code="UPSTREAM_ERROR", status_code=502
        )
