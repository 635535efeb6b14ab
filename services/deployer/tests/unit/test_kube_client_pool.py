"""The Kubernetes client's timeouts against a real HTTP server on loopback: a request that waits
for a connection of a full pool longer than the request timeout still gets its answer (the wait
is not the API server's fault), while an answer the server stalls on still times out."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from slipway_deployer.adapters.runtime.base import FailureReason, RuntimeFailure
from slipway_deployer.adapters.runtime.kubernetes.client import KubeClient

REQUEST_TIMEOUT_S = 0.5
WATCH_HELD_S = 4 * REQUEST_TIMEOUT_S  # the one pooled connection is busy this long


class StubApiServer:
    """A watch of pods that stays open ``WATCH_HELD_S`` (an event every 0.1 s), ``/version`` at
    once, ``/stall`` never; records the order in which things happened."""

    def __init__(self) -> None:
        self.happened: list[str] = []
        self.watching = asyncio.Event()
        self.closing = asyncio.Event()  # set before the server stops: ``/stall`` answers then

    async def watch(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        self.happened.append("watch opened")
        self.watching.set()
        loop = asyncio.get_running_loop()
        end = loop.time() + WATCH_HELD_S
        while loop.time() < end:
            event = {"type": "MODIFIED", "object": {"metadata": {"name": "p"}}}
            await response.write(json.dumps(event).encode() + b"\n")
            await asyncio.sleep(0.1)
        self.happened.append("watch ended")
        await response.write_eof()
        return response

    async def version(self, request: web.Request) -> web.Response:
        self.happened.append("version asked")
        return web.json_response({"gitVersion": "v1.35.4"})

    async def stall(self, request: web.Request) -> web.Response:
        await self.closing.wait()
        return web.json_response({})


@pytest.fixture
async def server() -> AsyncIterator[tuple[StubApiServer, str]]:
    stub = StubApiServer()
    app = web.Application()
    app.router.add_get("/api/v1/namespaces/ns/pods", stub.watch)
    app.router.add_get("/version", stub.version)
    app.router.add_get("/stall", stub.stall)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield stub, f"http://127.0.0.1:{port}"
    finally:
        stub.closing.set()
        await runner.cleanup()


async def test_a_request_waiting_for_a_busy_pool_is_not_timed_out(
    server: tuple[StubApiServer, str],
) -> None:
    stub, url = server
    client = KubeClient.connect(
        api_url=url,
        token=None,
        ca_cert=None,
        request_timeout_s=REQUEST_TIMEOUT_S,
        max_connections=1,
    )
    try:

        async def watch_all() -> int:
            return len([event async for event in client.watch("Pod", "ns", timeout_s=60)])

        watching = asyncio.create_task(watch_all())
        await asyncio.wait_for(stub.watching.wait(), 30)
        version = await client.version()  # queued behind the watch, for longer than the timeout
        assert version == {"gitVersion": "v1.35.4"}
        assert await watching > 0
        # the request did wait for the pool: the server saw it only once the watch had ended
        assert stub.happened == ["watch opened", "watch ended", "version asked"]
    finally:
        await client.close()


async def test_an_answer_the_server_stalls_on_times_out(
    server: tuple[StubApiServer, str],
) -> None:
    _, url = server
    client = KubeClient.connect(
        api_url=url, token=None, ca_cert=None, request_timeout_s=REQUEST_TIMEOUT_S
    )
    try:
        with pytest.raises(RuntimeFailure) as failure:
            await asyncio.wait_for(client.request("GET", "/stall"), 30)
        assert failure.value.reason is FailureReason.CLUSTER_UNREACHABLE
    finally:
        await client.close()
