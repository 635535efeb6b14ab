"""Following logs through the public API (issue 12, item 3): Server-Sent Events from the gateway,
lines published to the real ``logs.lines.v1`` topic while followers are connected.

- seam: lines produced continuously while a follower connects — every line exactly once, in
  cursor order, across the stored history and the live lines;
- resume: a follower that disconnects mid-stream and reconnects with ``Last-Event-ID`` gets
  the rest, nothing lost or repeated (a connection's lifetime and heartbeats:
  services/logs/tests/integration/test_follow.py);
- isolation: a follower that never reads delays no other one, and later gets a ``skipped``
  event whose ``from_cursor`` fetches exactly what it missed;
- access: another organization's follow answers 404 before any stream; an API token follows.
"""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from click.testing import Result
from typer.testing import CliRunner
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from slipway_cli.main import app as cli
from slipway_contracts import new_event
from slipway_contracts.events.logs import LINES_TOPIC, LogLine, LogLinesAppended
from slipway_libs.testing.platform import Platform
from slipway_libs.testing.public_api import User, create_org, eventually, sign_up, token_auth
from tests.e2e.sse import Event, events

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

BACKLOG = 200  # the logs service's per-follower buffer here (lines)


@pytest.fixture(scope="module")
async def platform(platform_factory) -> Platform:
    return await platform_factory(
        ["identity", "catalog", "deployer", "logs", "gateway"],
        extra_env={
            "SLIPWAY_LOGS_FOLLOW_BACKLOG_LINES": str(BACKLOG),
            "SLIPWAY_LOGS_FOLLOW_HEARTBEAT_S": "0.5",
            "SLIPWAY_LOGS_FOLLOW_LIFETIME_S": "300",
        },
    )


class Lines:
    """Publishes a service's live lines to the platform's topic, as the deployer does."""

    def __init__(self, platform: Platform, organization_id: str, service_id: str) -> None:
        self.topic = platform.prefix + LINES_TOPIC
        self.organization_id = uuid.UUID(organization_id)
        self.service_id = uuid.UUID(service_id)
        self.producer = AIOKafkaProducer(
            **platform.kafka.options(), acks="all", enable_idempotence=True
        )

    async def send(self, texts: Sequence[str]) -> None:
        payload = LogLinesAppended(
            kind="live",
            service_id=self.service_id,
            lines=[LogLine(at=datetime.now(UTC), stream="stdout", text=t) for t in texts],
        )
        event = new_event(
            payload,
            subject=str(self.service_id),
            source="test",
            organization_id=self.organization_id,
        )
        await self.producer.send_and_wait(self.topic, event.to_json(), key=event.subject.encode())

    async def steadily(self, texts: Sequence[str], per_event: int = 5) -> None:
        """``texts`` in small events, one after the other (each waits for the broker)."""
        for i in range(0, len(texts), per_event):
            await self.send(texts[i : i + per_event])


@pytest.fixture
async def api(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=f"{platform.url('gateway')}/api/v1", timeout=httpx.Timeout(30, read=None)
    ) as client:
        yield client


async def _environment(api: httpx.AsyncClient, owner: User, org: str) -> str:
    clusters = (await api.get(f"/organizations/{org}/clusters", headers=owner.auth)).json()
    project = await api.post(
        f"/organizations/{org}/projects",
        json={"name": f"Follow {uuid.uuid4().hex[:8]}"},
        headers=owner.auth,
    )
    env = await api.post(
        f"/projects/{project.json()['id']}/environments",
        headers=owner.auth,
        json={"name": "staging", "mode": "staging", "cluster_id": clusters["items"][0]["id"]},
    )
    assert env.status_code == 201, env.text
    return str(env.json()["id"])


@pytest.fixture
async def service(api, platform) -> AsyncIterator[tuple[User, str, str, Lines]]:
    """An owner, their organization, a service of theirs, and a publisher of its lines."""
    owner = await sign_up(api, "Fay")
    org = await create_org(api, owner)
    env = await _environment(api, owner, org)
    created = await api.post(
        f"/environments/{env}/services",
        headers=owner.auth,
        json={
            "name": "talker",
            "kind": "container",
            "image": {"registry": "registry.example", "name": "talker", "tag": "1"},
            "ports": [{"port": 8080}],
        },
    )
    assert created.status_code == 201, created.text
    lines = Lines(platform, org, created.json()["id"])
    await lines.producer.start()
    try:
        yield owner, org, created.json()["id"], lines
    finally:
        await lines.producer.stop()


async def _stored(api: httpx.AsyncClient, user: User, service_id: str, at_least: int) -> bool:
    page = await api.get(f"/services/{service_id}/logs", params={"tail": 1}, headers=user.auth)
    assert page.status_code == 200, page.text
    return bool(page.json()["head_cursor"] >= at_least)


async def _follow_until(
    api: httpx.AsyncClient,
    headers: dict[str, str],
    path: str,
    last_text: str,
    params: dict[str, Any] | None = None,
    following: asyncio.Event | None = None,
) -> list[Event]:
    """The events of one follow (reconnecting with ``Last-Event-ID`` when its lifetime ends)
    until the line ``last_text``; ``following`` is set once the first follow is subscribed."""
    seen: list[Event] = []
    resume: str | None = None
    while True:
        asked = {**headers, **({"last-event-id": resume} if resume else {})}
        query = {"follow": "true", **(params or {})}
        async with api.stream("GET", path, params=query, headers=asked) as response:
            assert response.status_code == 200, await response.aread()
            assert response.headers["content-type"].startswith("text/event-stream")
            async for event in events(response):
                if event.event == "following" and following is not None:
                    following.set()
                if event.event == "resume":
                    resume = event.id
                    break
                if event.event in ("line", "skipped"):
                    seen.append(event)
                if event.event == "line" and event.data["text"] == last_text:
                    return seen


def _texts(seen: Sequence[Event]) -> list[str]:
    return [e.data["text"] for e in seen if e.event == "line"]


def _cursors(seen: Sequence[Event]) -> list[int]:
    cursors = [int(e.id) for e in seen if e.event == "line" and e.id is not None]
    assert cursors == sorted(set(cursors)), "cursors repeat or go back"
    return cursors


async def test_a_follower_joining_a_busy_stream_sees_every_line_once_in_order(api, service) -> None:
    owner, _, service_id, lines = service
    texts = [f"line {i}" for i in range(400)]
    producing = asyncio.create_task(lines.steadily(texts, per_event=2))
    try:
        # join while lines keep coming: some are stored history, the rest arrive live
        await eventually(lambda: _stored(api, owner, service_id, 40), within_s=30)
        seen = await _follow_until(
            api, owner.auth, f"/services/{service_id}/logs", "line 399", {"tail": 5000}
        )
    finally:
        await producing
    assert _texts(seen) == texts
    assert _cursors(seen) == list(range(1, 401))


async def test_a_follower_resumes_with_last_event_id_nothing_lost_or_repeated(api, service) -> None:
    owner, _, service_id, lines = service
    path = f"/services/{service_id}/logs"
    await lines.steadily([f"early {i}" for i in range(30)])
    await eventually(lambda: _stored(api, owner, service_id, 30), within_s=30)
    first: list[Event] = []
    middle: asyncio.Task[None] | None = None
    async with api.stream(
        "GET", path, params={"follow": "true", "tail": 10}, headers=owner.auth
    ) as response:
        async for event in events(response):
            if event.event == "line":
                first.append(event)
            if len(first) == 10 and middle is None:  # the tail came: more lines, live
                middle = asyncio.create_task(lines.steadily([f"middle {i}" for i in range(20)]))
            if len(first) == 15:
                break  # disconnect mid-stream
    assert middle is not None
    await middle
    await lines.steadily([f"late {i}" for i in range(20)])  # while nobody follows
    rest = await _follow_until(
        api, {**owner.auth, "last-event-id": str(first[-1].id)}, path, "late 19"
    )
    assert _texts(first) == [f"early {i}" for i in range(20, 30)] + [
        f"middle {i}" for i in range(5)
    ]
    assert _texts(rest) == [f"middle {i}" for i in range(5, 20)] + [f"late {i}" for i in range(20)]
    assert _cursors(first + rest) == list(range(21, 71))


async def test_a_stalled_follower_delays_no_one_and_gets_a_fetchable_skipped_event(
    api, service, platform
) -> None:
    owner, _, service_id, lines = service
    path = f"/services/{service_id}/logs"
    big = "x" * 15_000
    # far more bytes than the socket buffers between a follower and the logs service hold
    texts = [f"{i} {big}" for i in range(1200)]
    stalled = await _stalled_follower(platform.url("gateway"), f"/api/v1{path}", owner)
    try:
        following = asyncio.Event()
        healthy = asyncio.create_task(
            _follow_until(api, owner.auth, path, texts[-1], {"tail": 0}, following)
        )
        # both follow from the end: lines sent before they subscribe are not theirs to get
        await asyncio.wait_for(following.wait(), timeout=30)
        await lines.steadily(texts, per_event=20)
        seen = await healthy
        assert _texts(seen) == texts  # the healthy follower got every line, in order
        got = [event async for event in _read_stalled(stalled, until_text=texts[-1])]
    finally:
        stalled.close()
    skipped = [event.data for event in got if event.event == "skipped"]
    assert skipped, "the stalled follower was never told it missed lines"
    kept = [int(event.id) for event in got if event.event == "line"]
    fetched: list[int] = []
    for gap in skipped:
        fetched_gap = await _gap(api, owner, path, gap)
        assert len(fetched_gap) == gap["count"], gap
        fetched += fetched_gap
    # what it was sent and what its gaps fetch make the stream, each line once
    assert sorted(kept + fetched) == list(range(1, max(kept + fetched) + 1))


async def _gap(api: httpx.AsyncClient, user: User, path: str, gap: dict[str, int]) -> list[int]:
    """The cursors a ``skipped`` event names, read back page by page (a page holds at most
    4 MiB of text, so a gap of long lines takes several)."""
    cursors: list[int] = []
    after = gap["from_cursor"]
    while True:
        page = await api.get(
            path,
            params={"after": after, "before": gap["to_cursor"] + 1, "limit": 5000},
            headers=user.auth,
        )
        assert page.status_code == 200, page.text
        items = page.json()["items"]
        cursors += [line["cursor"] for line in items]
        if not items or items[-1]["cursor"] >= gap["to_cursor"]:
            return cursors
        after = items[-1]["cursor"]


async def _stalled_follower(gateway: str, path: str, user: User) -> socket.socket:
    """A follow over a socket with a small receive buffer (fixed: no autotuning) that nobody
    reads until ``_read_stalled``, once it is subscribed (its answer's head and the
    ``: following`` comment are read here, byte by byte so that nothing more is)."""
    url = httpx.URL(gateway)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (url.host, url.port))
    request = (
        f"GET {path}?follow=true&tail=0 HTTP/1.1\r\nHost: {url.host}\r\n"
        f"Authorization: {user.auth['authorization']}\r\n\r\n"
    )
    loop = asyncio.get_running_loop()
    await loop.sock_sendall(sock, request.encode())
    opening = b""
    async with asyncio.timeout(30):
        # to the end of the chunk that holds the comment (SSE text has no CR)
        while b": following\n\n" not in opening or not opening.endswith(b"\r\n"):
            byte = await loop.sock_recv(sock, 1)
            assert byte, opening
            opening += byte
    assert opening.startswith(b"HTTP/1.1 200"), opening
    return sock


async def _read_stalled(sock: socket.socket, *, until_text: str) -> AsyncIterator[Event]:
    """The stalled follow's events, read at last (chunked transfer decoded by hand), until its
    line ``until_text`` or its ``resume``."""
    reader, writer = await asyncio.open_connection(sock=sock, limit=2**20)
    try:
        pending = b""  # the head was read when it opened
        while True:
            size = int((await reader.readline()).strip(), 16)
            pending += await reader.readexactly(size + 2)
            pending = pending[:-2]
            while b"\n\n" in pending:
                block, pending = pending.split(b"\n\n", 1)
                fields = dict(
                    line.split(": ", 1) for line in block.decode().splitlines() if ": " in line
                )
                if "event" not in fields:
                    continue
                event = Event(fields["event"], fields.get("id"), json.loads(fields["data"]))
                yield event
                if event.event == "resume" or (
                    event.event == "line" and event.data["text"] == until_text
                ):
                    return
    finally:
        writer.close()


async def test_another_organization_cannot_follow_and_an_api_token_can(api, service) -> None:
    owner, org, service_id, lines = service
    path = f"/services/{service_id}/logs"
    stranger = await sign_up(api, "Eve")
    await create_org(api, stranger, "Elsewhere")
    async with api.stream(
        "GET", path, params={"follow": "true"}, headers=stranger.auth
    ) as response:
        assert response.status_code == 404
        assert (await response.aread()) and response.json()["error"]["code"] == "SERVICE_NOT_FOUND"

    created = await api.post(
        f"/organizations/{org}/api-tokens",
        json={"name": "ci", "role": "viewer"},
        headers=owner.auth,
    )
    assert created.status_code == 201, created.text
    await lines.send(["for the token"])
    seen = await _follow_until(api, token_auth(created.json()["token"]), path, "for the token")
    assert _texts(seen) == ["for the token"]


async def _deploy(api: httpx.AsyncClient, owner: User, env: str) -> str:
    """A deployment of the (empty) environment: it ends quickly, by itself."""
    for _ in range(300):  # the deployer learns the environment from the catalog's events
        deployed = await api.post(f"/environments/{env}/deploy", headers=owner.auth)
        if deployed.status_code != 404:
            break
        await asyncio.sleep(0.1)
    assert deployed.status_code == 202, deployed.text
    return str(deployed.json()["request_id"])


async def test_a_deployments_follower_gets_its_lines_then_an_end_event(api) -> None:
    owner = await sign_up(api, "Dee")
    org = await create_org(api, owner)
    env = await _environment(api, owner, org)
    deployment = await _deploy(api, owner, env)
    seen: list[Event] = []
    async with api.stream(
        "GET", f"/deployments/{deployment}/logs", params={"follow": "true"}, headers=owner.auth
    ) as response:
        assert response.status_code == 200, await response.aread()
        async for event in events(response):
            if event.event in ("line", "end"):
                seen.append(event)
            if event.event == "end":
                break
    end = seen[-1]
    assert end.event == "end" and end.data["status"] in ("SUCCESS", "ERROR", "CANCELED")
    finished = await api.get(f"/deployments/{deployment}", headers=owner.auth)
    assert finished.json()["status"] == end.data["status"], finished.text
    cursors = _cursors(seen[:-1])
    assert end.data["last_cursor"] == (cursors[-1] if cursors else 0)


async def _next_event(ws: Any) -> dict[str, Any]:
    """The socket's next message that is not a heartbeat."""
    while True:
        message = json.loads(await ws.recv())
        if message["event"] != "heartbeat":
            return dict(message)


async def test_a_websocket_relays_the_follow_and_refuses_another_organization(
    api, service, platform
) -> None:
    owner, org, service_id, lines = service
    url = platform.url("gateway").replace("http", "ws", 1)
    socket_path = f"{url}/api/v1/services/{service_id}/logs/ws"
    await lines.send(["one", "two"])
    await eventually(lambda: _stored(api, owner, service_id, 2), within_s=30)
    created = await api.post(
        f"/organizations/{org}/api-tokens",
        json={"name": "ws", "role": "viewer"},
        headers=owner.auth,
    )
    assert created.status_code == 201, created.text

    # an API token in the query string, as a browser has to
    async with connect(f"{socket_path}?tail=1&token={created.json()['token']}") as ws:
        first = await _next_event(ws)
        assert (first["event"], first["id"], first["data"]["text"]) == ("line", "2", "two")
        await lines.send(["three"])
        second = await _next_event(ws)
        assert (second["id"], second["data"]["text"]) == ("3", "three")

    # the session's bearer token in the header, resuming after a cursor
    async with connect(f"{socket_path}?after=1", additional_headers=owner.auth) as ws:
        texts = [(await _next_event(ws))["data"]["text"] for _ in range(2)]
        assert texts == ["two", "three"]

    stranger = await sign_up(api, "Mal")
    await create_org(api, stranger, "Elsewhere")
    async with connect(socket_path, additional_headers=stranger.auth) as ws:
        refusal = await _next_event(ws)
        assert refusal["event"] == "error"
        assert refusal["error"]["code"] == "SERVICE_NOT_FOUND"
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4404


def _slipway(platform: Platform, token: str, *args: str) -> Result:
    """The ``slipway`` command, as a user runs it, against this platform with an API token."""
    env = {"SLIPWAY_API_URL": platform.url("gateway"), "SLIPWAY_TOKEN": token}
    return CliRunner().invoke(cli, list(args), env=env)


async def test_the_cli_reads_a_services_lines_and_follows_a_deployment_to_its_end(
    api, service, platform
) -> None:
    owner, org, service_id, lines = service
    await lines.send(["apple", "banana", "cherry"])
    await eventually(lambda: _stored(api, owner, service_id, 3), within_s=30)
    created = await api.post(
        f"/organizations/{org}/api-tokens",
        json={"name": "cli", "role": "viewer"},
        headers=owner.auth,
    )
    token = created.json()["token"]

    result = await asyncio.to_thread(_slipway, platform, token, "logs", service_id, "--tail", "2")
    assert result.exit_code == 0, result.output
    assert result.output.split() == ["banana", "cherry"]
    result = await asyncio.to_thread(
        _slipway, platform, token, "logs", service_id, "--grep", "APP", "--since", "1h"
    )
    assert result.output.split() == ["apple"]

    deployment = await _deploy(api, owner, await _environment(api, owner, org))
    # -f ends by itself at the deployment's end; the exit status says how it ended
    result = await asyncio.to_thread(
        _slipway, platform, token, "deployments", "logs", deployment, "-f"
    )
    status = (await api.get(f"/deployments/{deployment}", headers=owner.auth)).json()["status"]
    assert f"deployment ended: {status}" in result.output
    assert result.exit_code == (0 if status == "SUCCESS" else 1), result.output
