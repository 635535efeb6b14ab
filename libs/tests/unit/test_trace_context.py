"""A request whose spans go nowhere still runs in a trace (``TraceContextMiddleware``): the
caller's, continued, or a new one; its ids are what logs, outgoing requests and outbox rows
carry, as a recorded server span's would be."""

from __future__ import annotations

import httpx
from starlette.types import Receive, Scope, Send

from slipway_libs.http import TraceContextMiddleware
from slipway_libs.telemetry import current_carrier, current_ids

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER = f"00-{CALLER_TRACE}-00f067aa0ba902b7-01"


class Seen:
    """An app that answers and remembers the trace context it ran in."""

    def __init__(self) -> None:
        self.ids: list[tuple[str, str] | None] = []
        self.carriers: list[dict[str, str]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.ids.append(current_ids())
        self.carriers.append(current_carrier())
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def _get(app: TraceContextMiddleware, headers: dict[str, str] | None = None) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/x", headers=headers)).status_code == 204


async def test_the_callers_trace_goes_on_under_a_span_of_this_service() -> None:
    seen = Seen()
    await _get(TraceContextMiddleware(seen), {"traceparent": CALLER})
    ids = seen.ids[0]
    assert ids is not None
    assert ids[0] == CALLER_TRACE
    assert ids[1] != "00f067aa0ba902b7"  # this service's own span id, not the caller's
    sent = seen.carriers[0]["traceparent"]
    assert sent == f"00-{CALLER_TRACE}-{ids[1]}-01"  # what an outgoing request carries


async def test_a_request_without_a_trace_starts_one_per_request() -> None:
    seen = Seen()
    app = TraceContextMiddleware(seen)
    await _get(app)
    await _get(app, {"traceparent": "garbage"})
    first, second = seen.ids
    assert first is not None and second is not None
    assert first[0] != second[0]
    assert seen.carriers[0]["traceparent"].endswith("-01")  # sampled: a collector may keep it
