"""A principal's concurrent log follows are capped at the gateway (``max_per_principal``): one
more is a 429 TOO_MANY_FOLLOWS with Retry-After, nothing is opened upstream, and a place is free
again when a follow ends. The upstream is an in-memory transport answering a short stream."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import StreamingResponse

from slipway_gateway.api.streams import UpstreamStreams
from slipway_libs.actor import Actor
from slipway_libs.errors import BusinessError


def actor() -> Actor:
    return Actor(type="user", id=str(uuid.uuid4()), user_id=uuid.uuid4())


def request() -> Request:
    scope = {"type": "http", "method": "GET", "path": "/", "query_string": b"", "headers": []}
    return Request(scope)


@pytest.fixture
async def streams() -> AsyncIterator[tuple[UpstreamStreams, list[httpx.Request]]]:
    opened: list[httpx.Request] = []

    def handle(upstream_request: httpx.Request) -> httpx.Response:
        opened.append(upstream_request)

        async def body() -> AsyncIterator[bytes]:
            yield b": following\n\n"

        return httpx.Response(200, content=body(), headers={"content-type": "text/event-stream"})

    streams = UpstreamStreams(urls={"logs": "http://l"}, internal_token=None, max_per_principal=2)
    await streams.http.aclose()
    streams.http = httpx.AsyncClient(transport=httpx.MockTransport(handle))
    yield streams, opened
    await streams.aclose()


async def follow(streams: UpstreamStreams, who: Actor) -> StreamingResponse:
    response = await streams.open(request(), service="logs", path="/s", actor=who)
    assert isinstance(response, StreamingResponse)
    return response


async def test_one_follow_beyond_the_cap_is_a_429_until_one_ends(streams) -> None:
    upstream, opened = streams
    alice, bob = actor(), actor()
    first = await follow(upstream, alice)
    await follow(upstream, alice)
    with pytest.raises(BusinessError) as refused:
        await follow(upstream, alice)
    assert (refused.value.status_code, refused.value.code) == (429, "TOO_MANY_FOLLOWS")
    assert refused.value.headers["Retry-After"]
    assert len(opened) == 2  # the refused one was not opened upstream
    await follow(upstream, bob)  # another principal's places are their own

    async for _ in first.body_iterator:  # the first follow ends (its upstream did)
        pass
    await follow(upstream, alice)


async def test_a_websocket_follow_takes_a_place_too(streams) -> None:
    upstream, _ = streams
    alice = actor()
    await follow(upstream, alice)
    await follow(upstream, alice)
    events = upstream.events(request(), service="logs", path="/s", actor=alice, params={})
    with pytest.raises(BusinessError) as refused:
        await anext(events)
    assert refused.value.code == "TOO_MANY_FOLLOWS"
