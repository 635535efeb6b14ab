"""The gateway's upstream HTTP/1.1 client against a real server on loopback whose answers are
written by hand, so that each test controls the framing: bodies by length, in chunks or until
the close; keep-alive and what ends it; interim, HEAD, 204 and 304 answers; a connection the
upstream closed while idle; the read timeout; the pool's limit; cancellation; refused headers.
Then the same errors through ``Upstreams.forward``, as the caller is answered."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from starlette.requests import Request

from slipway_gateway.api.proxy import Upstreams
from slipway_gateway.api.upstream_http import (
    ConnectFailed,
    Disconnected,
    Origin,
    StaleConnection,
    UpstreamBusy,
    UpstreamPool,
    split_url,
)
from slipway_libs.errors import BusinessError

# a guard against a hang, never an assertion on time
GUARD_S = 5.0

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "Upstream"], Awaitable[None]]


class Upstream:
    """What reached the server: the connections it accepted, each request's head and body."""

    def __init__(self) -> None:
        self.connections = 0
        self.requests: list[bytes] = []
        self.bodies: list[bytes] = []

    async def read(self, reader: asyncio.StreamReader) -> bytes | None:
        """The next request's head (its body read too), None at the connection's end."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        self.requests.append(head)
        length = next(
            (
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        self.bodies.append(await reader.readexactly(length))
        return head

    def request_lines(self) -> list[bytes]:
        return [head.split(b"\r\n", 1)[0] for head in self.requests]


@contextlib.asynccontextmanager
async def serving(script: Script) -> AsyncIterator[tuple[Upstream, Origin]]:
    upstream = Upstream()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream.connections += 1
        with contextlib.suppress(ConnectionError):
            await script(reader, writer, upstream)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield upstream, Origin("127.0.0.1", port)
        server.close()


def answering(*answers: bytes) -> Script:
    """Answers each request on a connection with the next of ``answers`` (the last again once
    they run out), as long as the client keeps the connection."""

    async def script(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, upstream: Upstream
    ) -> None:
        served = 0
        while await upstream.read(reader) is not None:
            writer.write(answers[min(served, len(answers) - 1)])
            await writer.drain()
            served += 1

    return script


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"


def pool(
    connections: int = 8, *, connect_s: float = GUARD_S, read_s: float = GUARD_S
) -> UpstreamPool:
    return UpstreamPool(connections=connections, connect_timeout_s=connect_s, read_timeout_s=read_s)


async def test_the_request_is_only_what_the_caller_gave_and_its_framing() -> None:
    async with serving(answering(OK)) as (upstream, origin):
        client = pool()
        await client.request(origin, "GET", "/x?a=1", headers={"x-actor": "j\u00f6"})
        await client.request(origin, "POST", "/y", headers={})
        await client.request(origin, "PATCH", "/z", headers={}, body=b"{}")
        await client.aclose()
    authority = f"127.0.0.1:{origin.port}".encode()
    assert upstream.requests == [
        b"GET /x?a=1 HTTP/1.1\r\nHost: " + authority + b"\r\nx-actor: j\xc3\xb6\r\n\r\n",
        b"POST /y HTTP/1.1\r\nHost: " + authority + b"\r\nContent-Length: 0\r\n\r\n",
        b"PATCH /z HTTP/1.1\r\nHost: " + authority + b"\r\nContent-Length: 2\r\n\r\n",
    ]
    assert upstream.bodies == [b"", b"", b"{}"]


async def test_a_body_by_content_length_and_the_connection_kept_for_the_next() -> None:
    async with serving(answering(OK)) as (upstream, origin):
        client = pool()
        first = await client.request(origin, "GET", "/a", headers={})
        second = await client.request(origin, "GET", "/b", headers={})
        await client.aclose()
    assert (first.status, first.body) == (200, b"hello")
    assert second.body == b"hello"
    assert upstream.connections == 1
    assert upstream.request_lines() == [b"GET /a HTTP/1.1", b"GET /b HTTP/1.1"]


async def test_a_chunked_body_in_pieces() -> None:
    async def script(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, upstream: Upstream
    ) -> None:
        while await upstream.read(reader) is not None:
            for piece in (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n",
                b"\r\n5\r\nhel",
                b"lo\r\n6\r\n world\r\n",
                b"0\r\n\r\n",
            ):
                writer.write(piece)
                await writer.drain()
                await asyncio.sleep(0.01)  # each piece its own read on the client's side

    async with serving(script) as (upstream, origin):
        client = pool()
        first = await client.request(origin, "GET", "/a", headers={})
        second = await client.request(origin, "GET", "/b", headers={})
        await client.aclose()
    assert first.body == second.body == b"hello world"
    assert upstream.connections == 1


async def test_a_body_delimited_by_the_close_and_that_connection_not_reused() -> None:
    async def script(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, upstream: Upstream
    ) -> None:
        await upstream.read(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil ")
        await writer.drain()
        writer.write(b"the close")

    async with serving(script) as (upstream, origin):
        client = pool()
        first = await client.request(origin, "GET", "/a", headers={})
        second = await client.request(origin, "GET", "/b", headers={})
        await client.aclose()
    assert first.body == second.body == b"until the close"
    assert upstream.connections == 2


async def test_a_close_delimited_body_cut_by_a_reset_is_no_answer() -> None:
    async def script(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, upstream: Upstream
    ) -> None:
        await upstream.read(reader)
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{"items": [1, 2')
        await writer.drain()
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()  # a reset, not the close that would end the body

    async with serving(script) as (_, origin):
        client = pool()
        with pytest.raises(Disconnected):
            await client.request(origin, "GET", "/a", headers={})
        await client.aclose()


async def test_a_chunked_answers_trailers_are_not_taken_for_its_headers() -> None:
    chunked = (
        b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nETag: "good"\r\n\r\n'
        b'2\r\nok\r\n0\r\nETag: "evil"\r\nX-Slipway-Changes: []\r\n\r\n'
    )
    async with serving(answering(chunked)) as (upstream, origin):
        client = pool()
        answer = await client.request(origin, "GET", "/a", headers={})
        again = await client.request(origin, "GET", "/b", headers={})
        await client.aclose()
    assert answer.body == again.body == b"ok"
    assert answer.headers.getall("etag") == ['"good"']
    assert "x-slipway-changes" not in answer.headers
    assert upstream.connections == 1


async def test_an_idle_connection_is_let_go_before_the_upstream_would_close_it() -> None:
    # the services close an idle connection after 75 s: a POST written as they do is lost (503),
    # so the pool uses none idle longer than its keep-alive (here none at all: no clock to race)
    async with serving(answering(OK)) as (upstream, origin):
        client = UpstreamPool(
            connections=8, connect_timeout_s=GUARD_S, read_timeout_s=GUARD_S, keepalive_s=0.0
        )
        for path in ("/a", "/b", "/c"):
            await client.request(origin, "POST", path, headers={})
        await client.aclose()
    assert upstream.connections == 3  # with the default keep-alive: 1 (the tests above)
    assert upstream.request_lines() == [
        b"POST /a HTTP/1.1",
        b"POST /b HTTP/1.1",
        b"POST /c HTTP/1.1",
    ]


async def test_an_answer_with_connection_close_is_not_reused() -> None:
    closing = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"
    async with serving(answering(closing)) as (upstream, origin):
        client = pool()
        for _ in range(2):
            assert (await client.request(origin, "GET", "/a", headers={})).body == b"ok"
        await client.aclose()
    assert upstream.connections == 2


async def test_an_answer_to_head_has_no_body_and_its_connection_is_closed() -> None:
    head = b'HTTP/1.1 200 OK\r\nContent-Length: 10\r\nETag: "v1"\r\n\r\n'
    async with serving(answering(head)) as (upstream, origin):
        client = pool(read_s=60)  # a client waiting for the body would hang: the guard fails it
        async with asyncio.timeout(GUARD_S):
            answer = await client.request(origin, "HEAD", "/a", headers={})
            again = await client.request(origin, "HEAD", "/a", headers={})
        await client.aclose()
    assert (answer.status, answer.body, answer.headers["content-length"]) == (200, b"", "10")
    assert again.headers["etag"] == '"v1"'
    assert upstream.connections == 2


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        (b"HTTP/1.1 204 No Content\r\n\r\n", 204),
        (b'HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\nETag: "v1"\r\n\r\n', 304),
    ],
)
async def test_204_and_304_have_no_body_and_keep_their_connection(
    answer: bytes, status: int
) -> None:
    async with serving(answering(answer, OK)) as (upstream, origin):
        client = pool(read_s=60)
        async with asyncio.timeout(GUARD_S):
            empty = await client.request(origin, "GET", "/a", headers={})
            after = await client.request(origin, "GET", "/b", headers={})
        await client.aclose()
    assert (empty.status, empty.body) == (status, b"")
    assert after.body == b"hello"
    assert upstream.connections == 1


async def test_interim_answers_are_skipped() -> None:
    answer = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
        b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"
    )
    async with serving(answering(answer)) as (upstream, origin):
        client = pool()
        created = await client.request(origin, "POST", "/a", headers={}, body=b"{}")
        again = await client.request(origin, "POST", "/a", headers={}, body=b"{}")
        await client.aclose()
    assert (created.status, created.body, "link" in created.headers) == (201, b"ok", False)
    assert again.status == 201
    assert upstream.connections == 1


async def test_repeated_headers_are_kept_and_read_in_any_case() -> None:
    answer = (
        b"HTTP/1.1 200 OK\r\nVary: Accept\r\nX-Slipway-Changes: [1]\r\nVary: Origin\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    async with serving(answering(answer)) as (_, origin):
        client = pool()
        answered = await client.request(origin, "GET", "/a", headers={})
        await client.aclose()
    assert answered.headers.getall("vary") == ["Accept", "Origin"]
    assert answered.headers.get("x-slipway-changes") == "[1]"
    assert ("Vary", "Origin") in answered.headers.items()


async def test_an_idle_connection_the_upstream_closed_is_not_used_again() -> None:
    async def script(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, upstream: Upstream
    ) -> None:
        await upstream.read(reader)
        writer.write(OK)  # kept alive, as far as the client knows, then closed while idle
        await writer.drain()

    async with serving(script) as (upstream, origin):
        client = pool()
        await client.request(origin, "GET", "/a", headers={})
        await asyncio.sleep(0.05)  # the close reaches the client (if not: the retry covers it)
        second = await client.request(origin, "GET", "/b", headers={})
        await client.aclose()
    assert second.body == b"hello"
    assert upstream.connections == 2


def dropping() -> Script:
    """Answers the first request of a connection with keep-alive, then reads the next and drops
    the connection unanswered: a stale pooled connection, every time."""

    async def script(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, upstream: Upstream
    ) -> None:
        await upstream.read(reader)
        writer.write(OK)
        await writer.drain()
        await upstream.read(reader)

    return script


async def test_an_idempotent_request_is_sent_again_on_a_fresh_connection() -> None:
    async with serving(dropping()) as (upstream, origin):
        client = pool()
        await client.request(origin, "GET", "/a", headers={})
        answer = await client.request(origin, "GET", "/b", headers={})
        await client.aclose()
    assert answer.body == b"hello"
    # the first connection read /b and dropped it; a fresh one answered it
    assert upstream.request_lines() == [b"GET /a HTTP/1.1", b"GET /b HTTP/1.1", b"GET /b HTTP/1.1"]
    assert upstream.connections == 2


async def test_a_post_on_a_dead_connection_is_the_stale_error_and_sent_once() -> None:
    async with serving(dropping()) as (upstream, origin):
        client = pool()
        await client.request(origin, "POST", "/a", headers={}, body=b"{}")
        with pytest.raises(StaleConnection):
            await client.request(origin, "POST", "/b", headers={}, body=b"{}")
        await client.aclose()
    assert upstream.request_lines() == [b"POST /a HTTP/1.1", b"POST /b HTTP/1.1"]
    assert upstream.connections == 1


def held(release: asyncio.Event, answer: bytes = OK) -> Script:
    """Answers each request only once ``release`` is set."""

    async def script(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, upstream: Upstream
    ) -> None:
        while await upstream.read(reader) is not None:
            await release.wait()
            writer.write(answer)
            await writer.drain()

    return script


async def test_no_byte_within_the_read_timeout_is_a_timeout_and_the_connection_is_dropped() -> None:
    release = asyncio.Event()
    async with serving(held(release)) as (upstream, origin):
        client = pool(read_s=0.2)
        with pytest.raises(TimeoutError):
            await client.request(origin, "GET", "/slow", headers={})
        release.set()
        answer = await client.request(origin, "GET", "/b", headers={})
        await client.aclose()
    assert answer.body == b"hello"
    assert upstream.connections == 2


async def test_a_full_pool_makes_the_next_request_wait_then_busy_unsent() -> None:
    release = asyncio.Event()
    async with serving(held(release)) as (upstream, origin):
        client = pool(1, connect_s=0.2)
        first = asyncio.create_task(client.request(origin, "GET", "/held", headers={}))
        while not upstream.requests:
            await asyncio.sleep(0.01)
        with pytest.raises(UpstreamBusy):
            await client.request(origin, "GET", "/next", headers={})
        assert upstream.request_lines() == [b"GET /held HTTP/1.1"]
        release.set()
        assert (await first).body == b"hello"
        # the connection came back: the next request has it
        assert (await client.request(origin, "GET", "/later", headers={})).body == b"hello"
        await client.aclose()
    assert upstream.connections == 1


async def test_a_waiting_request_gets_the_connection_another_released() -> None:
    release = asyncio.Event()
    async with serving(held(release)) as (upstream, origin):
        client = pool(1)
        first = asyncio.create_task(client.request(origin, "GET", "/1", headers={}))
        second = asyncio.create_task(client.request(origin, "GET", "/2", headers={}))
        while not upstream.requests:
            await asyncio.sleep(0.01)
        release.set()
        answers = await asyncio.gather(first, second)
        await client.aclose()
    assert [a.body for a in answers] == [b"hello", b"hello"]
    assert upstream.connections == 1


async def test_a_cancelled_request_does_not_give_back_its_half_read_connection() -> None:
    sent_part = asyncio.Event()

    async def script(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, upstream: Upstream
    ) -> None:
        while await upstream.read(reader) is not None:
            if len(upstream.requests) == 1:
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhel")
                await writer.drain()
                sent_part.set()
            else:
                writer.write(OK)
                await writer.drain()

    async with serving(script) as (upstream, origin):
        client = pool(1)
        request = asyncio.create_task(client.request(origin, "GET", "/a", headers={}))
        await sent_part.wait()
        await asyncio.sleep(0.02)  # the part reaches the client
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
        answer = await client.request(origin, "GET", "/b", headers={})
        await client.aclose()
    assert answer.body == b"hello"
    assert upstream.connections == 2


@pytest.mark.parametrize(
    ("target", "headers"),
    [
        ("/x", {"x-a": "1\r\nX-Injected: 1"}),
        ("/x", {"x-a": "1\nX-Injected: 1"}),
        ("/x", {"x-a": "1\rX-Injected: 1"}),
        ("/x", {"x-a": "1\x00"}),
        ("/x", {"x-a\r\nX-Injected": "1"}),
        ("/x", {"Content-Length": "5"}),
        ("/x HTTP/1.1\r\nX-Injected: 1\r\n\r\nGET /y", {}),
        ("/x y", {}),
        ("", {}),
    ],
)
async def test_a_header_or_target_that_could_split_the_request_is_refused_unsent(
    target: str, headers: dict[str, str]
) -> None:
    async with serving(answering(OK)) as (upstream, origin):
        client = pool()
        with pytest.raises(ValueError):
            await client.request(origin, "GET", target, headers=headers)
        await client.aclose()
    assert (upstream.connections, upstream.requests) == (0, [])


async def test_a_large_body_both_ways() -> None:
    async def echo(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, upstream: Upstream
    ) -> None:
        while await upstream.read(reader) is not None:
            body = upstream.bodies[-1]
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            await writer.drain()

    sent = bytes(range(256)) * 4096  # 1 MiB
    async with serving(echo) as (upstream, origin):
        client = pool()
        answer = await client.request(origin, "PUT", "/blob", headers={}, body=sent)
        await client.aclose()
    assert upstream.bodies == [sent]
    assert answer.body == sent


async def test_a_refused_connect_is_its_own_error() -> None:
    with socket.socket() as bound:  # bound, never listening: a connect to it is refused
        bound.bind(("127.0.0.1", 0))
        client = pool()
        with pytest.raises(ConnectFailed):
            await client.request(
                Origin("127.0.0.1", bound.getsockname()[1]), "GET", "/", headers={}
            )
        await client.aclose()


async def test_aclose_closes_the_kept_connections() -> None:
    ended = asyncio.Event()

    async def script(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, upstream: Upstream
    ) -> None:
        await answering(OK)(reader, writer, upstream)
        ended.set()

    async with serving(script) as (_, origin):
        client = pool()
        await client.request(origin, "GET", "/", headers={})
        await client.aclose()
        async with asyncio.timeout(GUARD_S):
            await ended.wait()


def test_only_plain_http_upstreams_are_accepted() -> None:
    assert split_url("http://catalog:8082") == (Origin("catalog", 8082), "")
    assert split_url("http://c") == (Origin("c", 80), "")
    with pytest.raises(ValueError, match="http://"):
        split_url("https://catalog:8082")
    with pytest.raises(ValueError, match="http://"):
        Upstreams(http=httpx.AsyncClient(), urls={"c": "ftp://c"}, internal_token=None)


# Through Upstreams.forward: what the caller is answered


def get(path: str = "/x", query: bytes = b"") -> Request:
    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {"type": "http", "method": "GET", "path": path, "headers": [], "query_string": query}
    return Request(scope, receive)


def upstreams(origin: Origin, *, timeout_s: float = GUARD_S, connections: int = 8) -> Upstreams:
    return Upstreams(
        http=httpx.AsyncClient(),
        urls={"svc": f"http://{origin.host}:{origin.port}"},
        internal_token=None,
        connections=connections,
        timeout_s=timeout_s,
    )


async def test_forward_passes_back_a_redirect_as_it_is_with_the_passed_back_headers() -> None:
    answer = (
        b'HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nETag: "7"\r\nSet-Cookie: s=1\r\n'
        b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    )
    async with serving(answering(answer)) as (upstream, origin):
        gateway = upstreams(origin)
        response = await gateway.forward(
            get(query=b"b=2&a=1"), service="svc", path="/x", actor=None
        )
        await gateway.aclose()
    assert (response.status_code, response.body) == (302, b"{}")
    assert response.headers["etag"] == '"7"'
    assert "location" not in response.headers and "set-cookie" not in response.headers
    assert upstream.request_lines() == [b"GET /x?b=2&a=1 HTTP/1.1"]


async def test_forward_answers_504_when_the_service_is_silent() -> None:
    release = asyncio.Event()
    async with serving(held(release)) as (_, origin):
        gateway = upstreams(origin, timeout_s=0.2)
        with pytest.raises(BusinessError) as refused:
            await gateway.forward(get(), service="svc", path="/x", actor=None)
        release.set()
        await gateway.aclose()
    assert (refused.value.status_code, refused.value.code) == (504, "UPSTREAM_TIMEOUT")


def trickling(release: asyncio.Event) -> Script:
    """Answers in chunks of one byte every 50 ms until ``release`` is set: never silent."""

    async def script(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, upstream: Upstream
    ) -> None:
        while await upstream.read(reader) is not None:
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            while not release.is_set():
                writer.write(b"1\r\na\r\n")
                await writer.drain()
                await asyncio.sleep(0.05)
            writer.write(b"0\r\n\r\n")
            await writer.drain()

    return script


async def test_the_read_timeout_is_for_silence_not_for_the_whole_answer() -> None:
    release = asyncio.Event()
    async with serving(trickling(release)) as (_, origin):
        client = pool(read_s=0.2)
        answer = asyncio.create_task(client.request(origin, "GET", "/", headers={}))
        await asyncio.sleep(0.5)  # longer than the read timeout, never silent that long
        release.set()
        assert set((await answer).body) == {ord("a")}
        await client.aclose()


async def test_forward_answers_503_busy_with_retry_after_when_the_pool_is_full() -> None:
    release = asyncio.Event()
    # the held answer trickles: it does not time out while the next request waits
    async with serving(trickling(release)) as (upstream, origin):
        gateway = upstreams(origin, timeout_s=0.2, connections=1)
        first = asyncio.create_task(gateway.forward(get(), service="svc", path="/x", actor=None))
        while not upstream.requests:
            await asyncio.sleep(0.01)
        with pytest.raises(BusinessError) as refused:
            await gateway.forward(get(), service="svc", path="/x", actor=None)
        release.set()
        assert (await first).status_code == 200
        await gateway.aclose()
    assert (refused.value.status_code, refused.value.code) == (503, "GATEWAY_BUSY")
    assert refused.value.headers == {"Retry-After": "1"}


async def test_forward_answers_503_unavailable_when_the_service_is_down() -> None:
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        gateway = upstreams(Origin("127.0.0.1", bound.getsockname()[1]))
        with pytest.raises(BusinessError) as refused:
            await gateway.forward(get(), service="svc", path="/x", actor=None)
        await gateway.aclose()
    assert (refused.value.status_code, refused.value.code) == (503, "UPSTREAM_UNAVAILABLE")
