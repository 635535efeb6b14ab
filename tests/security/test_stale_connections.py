"""An upstream's error never poisons the next request (issue 10, flaw 4).

A service that raised an unhandled error answered 500 and then dropped the connection; the
gateway kept it in its pool, and the next request — anyone's — failed with 503
``UPSTREAM_UNAVAILABLE``. Two layers now hold: a service answers an unhandled error with
``Connection: close`` and keeps the error from its server (so the connection ends cleanly), and
the gateway sends an idempotent request once more when a kept-alive connection died under it.
Both are tested on real sockets: a real uvicorn server, and a raw server that drops every
connection after its first answer (what a crashing or idle-closing upstream does).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn
from fastapi import APIRouter
from starlette.requests import Request

from slipway_gateway.api.proxy import Upstreams
from slipway_libs.errors import BusinessError
from slipway_libs.http import create_app


@contextlib.asynccontextmanager
async def _service() -> AsyncIterator[str]:
    router = APIRouter()

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("an unexpected bug")

    @router.get("/fine")
    async def fine() -> dict[str, str]:
        return {"ok": "yes"}

    # bound here and handed over: no other process can take the port between finding and using
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(service="t", routers=[router]), log_level="error")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()  # what stopped it
            raise AssertionError("the server ended before it started")
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def test_an_unhandled_error_ends_its_connection_cleanly() -> None:
    async with _service() as url, httpx.AsyncClient(base_url=url) as client:
        for _ in range(3):  # each time on the connection the pool kept
            boom = await client.get("/boom")
            assert boom.status_code == 500
            assert boom.json()["error"]["code"] == "INTERNAL"
            assert "unexpected bug" not in boom.text
            assert boom.headers["connection"] == "close"
            assert (await client.get("/fine")).status_code == 200


@contextlib.asynccontextmanager
async def _dropping_server() -> AsyncIterator[tuple[str, list[bytes]]]:
    """Answers the first request of each connection with keep-alive, then drops it unanswered
    at the next request — a stale pooled connection, every time."""
    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        seen.append(head.split(b"\r\n", 1)[0])
        length = next(
            (
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        await reader.readexactly(length)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n")
        writer.write(b"content-length: 2\r\n\r\n{}")
        await writer.drain()
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            dropped = await reader.readuntil(b"\r\n\r\n")  # dropped without an answer
            seen.append(b"dropped " + dropped.split(b"\r\n", 1)[0])
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}", seen
        server.close()
        await asyncio.sleep(0.05)  # let the handlers see their connections end


def _request(method: str) -> Request:
    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {
        "type": "http",
        "method": method,
        "path": "/x",
        "headers": [],
        "query_string": b"",
    }
    return Request(scope, receive)


async def test_an_idempotent_request_is_sent_again_on_a_dead_pooled_connection() -> None:
    async with _dropping_server() as (url, seen), httpx.AsyncClient() as http:
        upstreams = Upstreams(http=http, urls={"svc": url}, internal_token=None)
        for method in ("GET", "DELETE", "PUT", "GET"):
            answer = await upstreams.forward(
                _request(method), service="svc", path="/x", actor=None, body=b""
            )
            assert answer.status_code == 200, method
    # each later request first met the connection its predecessor left, then was sent again
    assert seen == [b"GET /x HTTP/1.1"] + [
        line
        for m in ("DELETE", "PUT", "GET")
        for line in (b"dropped " + f"{m} /x HTTP/1.1".encode(), f"{m} /x HTTP/1.1".encode())
    ]


async def test_a_non_idempotent_request_is_not_sent_twice() -> None:
    async with _dropping_server() as (url, seen), httpx.AsyncClient() as http:
        upstreams = Upstreams(http=http, urls={"svc": url}, internal_token=None)
        first = await upstreams.forward(
            _request("POST"), service="svc", path="/x", actor=None, body=b"{}"
        )
        assert first.status_code == 200
        with pytest.raises(BusinessError) as refused:
            await upstreams.forward(
                _request("POST"), service="svc", path="/x", actor=None, body=b"{}"
            )
        assert refused.value.code == "UPSTREAM_UNAVAILABLE"
    assert seen == [b"POST /x HTTP/1.1", b"dropped POST /x HTTP/1.1"]
