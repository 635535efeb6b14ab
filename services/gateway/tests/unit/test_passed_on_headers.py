"""The client's headers the gateway passes on to a service (Idempotency-Key, If-Match,
Last-Event-ID): a value that is not printable ASCII is refused with a 422 before anything is
sent (httpx cannot encode it: it was a 500). The upstream here is an in-memory transport that
records what reached it, or for a forwarded request a socket server that does."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.requests import Request

from slipway_gateway.api.proxy import Upstreams
from slipway_gateway.api.streams import UpstreamStreams
from slipway_libs.errors import BusinessError


def request_with(name: bytes, value: bytes, body: bytes = b"") -> Request:
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/x",
        "query_string": b"",
        "headers": [(name, value)],
    }

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(scope, receive)


class Upstream:
    def __init__(self) -> None:
        self.seen: list[httpx.Request] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        return httpx.Response(200, json={}, headers={"content-type": "application/json"})

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.handle))


BAD = [b"\xff", b"\xb2", b"a\x01b", b"caf\xc3\xa9"]


@pytest.mark.parametrize("value", BAD)
@pytest.mark.parametrize(
    ("name", "code"),
    [
        (b"idempotency-key", "INVALID_IDEMPOTENCY_KEY"),
        (b"if-match", "INVALID_HEADER"),
        (b"content-type", "INVALID_HEADER"),
    ],
)
async def test_a_forwarded_header_that_is_not_printable_ascii_is_a_422(
    name: bytes, code: str, value: bytes
) -> None:
    upstream = Upstream()
    upstreams = Upstreams(http=upstream.client(), urls={"catalog": "http://c"}, internal_token=None)
    with pytest.raises(BusinessError) as refused:
        await upstreams.forward(
            request_with(name, value, b"{}"), service="catalog", path="/x", actor=None
        )
    assert (refused.value.status_code, refused.value.code) == (422, code)
    assert refused.value.details == {"field": name.decode()}
    assert upstream.seen == []


@pytest.mark.parametrize("value", BAD)
async def test_a_last_event_id_that_is_not_printable_ascii_is_a_422(value: bytes) -> None:
    upstream = Upstream()
    streams = UpstreamStreams(urls={"logs": "http://l"}, internal_token=None)
    await streams.http.aclose()
    streams.http = upstream.client()
    with pytest.raises(BusinessError) as refused:
        await streams.open(
            request_with(b"last-event-id", value), service="logs", path="/x", actor=None
        )
    assert (refused.value.status_code, refused.value.code) == (422, "INVALID_HEADER")
    assert upstream.seen == []


async def test_valid_values_are_passed_on_as_they_came() -> None:
    heads: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n")
        writer.write(b"content-length: 2\r\n\r\n{}")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        upstreams = Upstreams(
            http=httpx.AsyncClient(),
            urls={"catalog": f"http://127.0.0.1:{port}"},
            internal_token=None,
        )
        request = request_with(b"idempotency-key", b"key 1~")
        await upstreams.forward(request, service="catalog", path="/x", actor=None)
        await upstreams.aclose()
    assert b"\r\nidempotency-key: key 1~\r\n" in heads[0].lower()
    upstream = Upstream()
    streams = UpstreamStreams(urls={"logs": "http://l"}, internal_token=None)
    await streams.http.aclose()
    streams.http = upstream.client()
    await streams.open(request_with(b"last-event-id", b"42"), service="logs", path="/x", actor=None)
    assert upstream.seen[0].headers["last-event-id"] == "42"
