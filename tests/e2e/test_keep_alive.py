"""A client may reuse an idle keep-alive connection for as long as its pool keeps it (httpx: 5 s;
browsers and proxies: up to about a minute): the platform's servers keep idle connections
longer than that. With uvicorn's default of 5 s on both sides, a request sent just as the
server closed the connection failed with a bare ``ReadError`` (seen under load on the deploy
story, client → gateway)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from slipway_libs.testing.platform import Platform

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def platform(platform_factory) -> Platform:
    return await platform_factory(["identity", "gateway"])


async def test_an_idle_connection_is_still_served_after_the_usual_pool_expiry(platform) -> None:
    limits = httpx.Limits(keepalive_expiry=60)
    async with httpx.AsyncClient(base_url=platform.url("gateway"), limits=limits) as client:
        first = await client.get("/healthz")
        socket = first.extensions["network_stream"].get_extra_info("socket")
        port = socket.getsockname()[1]
        # the condition itself is idle time: longer than uvicorn's 5 s default
        await asyncio.sleep(7)
        second = await client.get("/healthz")
        reused = second.extensions["network_stream"].get_extra_info("socket").getsockname()[1]
    assert (first.status_code, second.status_code) == (200, 200)
    assert reused == port, "the server had closed the idle connection"
