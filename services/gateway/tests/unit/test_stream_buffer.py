"""The receive buffer of an upstream log stream is fixed, not left to the kernel's autotuning:
a follower that stops reading must not pin tens of MiB of kernel memory in the gateway (the
maximum ``net.ipv4.tcp_rmem`` allows is 32 MiB on some hosts), and the logs service must find
out that it lags. A real TCP server answers one stream; the test reads the option off the
connection's socket."""

from __future__ import annotations

import asyncio
import socket
import uuid

from starlette.requests import Request

from slipway_gateway.api.streams import STREAM_RECEIVE_BUFFER, UpstreamStreams
from slipway_libs.actor import Actor


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
        b"transfer-encoding: chunked\r\n\r\n10\r\n: following\n\n\r\n"
    )
    await writer.drain()
    await reader.read()  # until the gateway closes the stream


async def test_an_upstream_stream_holds_a_fixed_receive_buffer() -> None:
    server = await asyncio.start_server(_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    streams = UpstreamStreams(urls={"logs": f"http://127.0.0.1:{port}"}, internal_token=None)
    scope = {"type": "http", "method": "GET", "path": "/", "query_string": b"", "headers": []}
    who = Actor(type="user", id=str(uuid.uuid4()), user_id=uuid.uuid4())
    try:
        request = streams.http.build_request("GET", f"http://127.0.0.1:{port}/s")
        upstream = await streams.http.send(request, stream=True)
        sock = upstream.extensions["network_stream"].get_extra_info("socket")
        # Linux doubles what it is given (for its bookkeeping) and stops autotuning it
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) == 2 * STREAM_RECEIVE_BUFFER
        await upstream.aclose()
        # and the route's own path opens through the same client
        response = await streams.open(Request(scope), service="logs", path="/s", actor=who)
        assert response.status_code == 200
        await response.background()  # type: ignore[misc]
    finally:
        await streams.aclose()
        server.close()
        await server.wait_closed()
