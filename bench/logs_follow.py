"""Logs follow: produce → follower latency through the gateway, and 500 followers with one stalled.

A real platform (identity, catalog, logs, gateway as processes, the devstack's Kafka and
PostgreSQL); one user, one organization, one service. Lines go to the platform's real
``logs.lines.v1`` topic as the deployer publishes them (``LogLinesAppended``, keyed by the
service), each line's ``at`` set to the wall clock just before it is sent; followers follow
``GET /api/v1/services/{id}/logs?follow=true&tail=0`` through the gateway (Server-Sent Events)
and take, for every line, arrival - ``at`` (one host, one clock). A follower counts as
subscribed once the ``: following`` comment came (every line committed after it will come).

1. **Latency at 5,000 lines/s**: one follower (in a process of its own), lines produced at
   ``--latency-rate`` (5,000/s: an event of 50 lines every 10 ms, on a monotonic schedule) for
   ``--latency-duration`` s; the first ``--warmup`` s are left out. Target: p99 < 500 ms.
2. **500 followers, one stalled**: ``--followers`` - 1 healthy followers (spread over
   ``--client-processes`` processes: 500 SSE clients in one Python process are a bottleneck of
   their own on 2 cores) stay connected through the whole run; each phase adds a 500th
   connection: in phase A a healthy one, in phase B a *stalled* one (a socket with a 4 KiB
   receive buffer that nobody reads once it is subscribed). Phases run A B B A (each
   ``--fanout-duration`` s at ``--fanout-rate`` lines/s of ``--fanout-line-bytes`` bytes), so a
   burst of other work on the shared machine hits both alike and a drift through the run (the
   p99 rose phase after phase in A B A B runs, charging it to B) weighs on both equally. The
   figure: the healthy followers' latency p99 in B over A (pooled: every line of every
   healthy follower), target ≤ 1.10. After each B phase the stalled follower is read at last:
   how many lines it was sent and how many it was told it missed (``skipped``), i.e. whether
   its buffers did fill.

The gateway caps follows per principal (``SLIPWAY_GATEWAY_FOLLOWS_PER_PRINCIPAL``, default 20);
this benchmark's platform raises it to 1,000 so that one user holds all the follows (a
benchmark setting; the product's default is unchanged). The logs service's own cap (1,000 per
process) is left as is.

``python bench/logs_follow.py [--latency-rate 5000] [--followers 500] [--fanout-rate 10]``;
``make bench`` runs it after the ingest (``bench/run.py --only logs``): one `results/logs.md`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import queue
import socket
import statistics
import sys
import time
import uuid
from array import array
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from support import (
    SPAWN,
    CpuSnapshot,
    Devstack,
    Flag,
    Latencies,
    Mailbox,
    Pacing,
    bench_platform,
    cores_used,
    cpu_snapshot,
    load_devstack,
    machine,
    machine_section,
    other_work,
    paced,
    quiet_logging,
    verdict,
)

from slipway_contracts import new_event
from slipway_contracts.events.logs import LINES_TOPIC, LogLine, LogLinesAppended
from slipway_libs.testing.platform import Platform
from slipway_libs.testing.public_api import User, create_org, sign_up

SERVICES = ["identity", "catalog", "logs", "gateway"]
TARGET_P99_MS = 500
TARGET_RATIO = 1.10
NOISY_SHARE = 0.10  # other work above this share of the cores: a noisy run (as outbox_pipeline)
FOLLOWS_PER_PRINCIPAL = 1_000  # this platform only: one user holds every follow
STALLED_RCVBUF = 4096
RESULTS = Path(__file__).resolve().parent / "results"
# the services' logs (``logs.ingested`` lag_ms, follow events) kept after a good run too
KEEP_LOGS = os.environ.get("SLIPWAY_BENCH_KEEP_LOGS") == "1"


@dataclass(frozen=True)
class Params:
    latency_rates: tuple[int, ...] = (5_000, 1_000)  # the target's, then a lighter one
    latency_duration_s: float = 20.0
    lines_per_event: int = 50
    warmup_s: float = 3.0
    followers: int = 500
    client_processes: int = 2
    # 4 lines/s x 499 followers: ~2,000 deliveries/s, what this shared machine keeps up with
    # (at 10 lines/s the platform fell behind and the phases' latencies drifted by tens of s)
    fanout_rate: int = 4
    fanout_line_bytes: int = 2_000
    fanout_duration_s: float = 25.0
    phases: str = "ABBA"
    # the logs service's per-follower backlog of line text (its default: 4 MiB); None: default
    backlog_bytes: int | None = None


# --- producing --------------------------------------------------------------------------------


class Producer:
    """A service's live lines to the platform's topic, as the deployer publishes them."""

    def __init__(self, platform: Platform, organization_id: str, service_id: str) -> None:
        self.topic = platform.prefix + LINES_TOPIC
        self.organization_id = uuid.UUID(organization_id)
        self.service_id = uuid.UUID(service_id)
        self.kafka = AIOKafkaProducer(
            **platform.kafka.options(), acks="all", enable_idempotence=True, linger_ms=0
        )
        self.pending: list[asyncio.Future[Any]] = []

    async def send(self, texts: Sequence[str]) -> None:
        now = datetime.now(UTC)  # the produce time every follower measures from
        payload = LogLinesAppended(
            kind="live",
            service_id=self.service_id,
            lines=[LogLine(at=now, stream="stdout", text=t) for t in texts],
        )
        event = new_event(
            payload,
            subject=str(self.service_id),
            source="bench",
            organization_id=self.organization_id,
        )
        # not waited for here: the schedule goes on while the broker acknowledges
        self.pending.append(
            await self.kafka.send(self.topic, event.to_json(), key=event.subject.encode())
        )

    async def run(self, tag: str, rate: int, duration_s: float, per_event: int, pad: int) -> Pacing:
        """``rate`` lines/s for ``duration_s``, ``per_event`` lines an event, then one line
        ``<tag>:last`` that tells the followers the phase is over."""
        ticks = max(1, round(duration_s * rate / per_event))
        filler = "x" * pad

        async def tick(i: int) -> None:
            await self.send([f"{tag}:{i * per_event + j}:{filler}" for j in range(per_event)])

        pacing = await paced(ticks, per_event / rate, per_event, tick)
        await self.send([f"{tag}:last"])
        await asyncio.gather(*self.pending)
        self.pending.clear()
        return pacing


# --- following (in worker processes) ------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    path: str  # /api/v1/services/{id}/logs
    authorization: str

    def request(self) -> bytes:
        return (
            f"GET {self.path}?follow=true&tail=0 HTTP/1.1\r\nHost: {self.host}\r\n"
            f"Authorization: {self.authorization}\r\nAccept: text/event-stream\r\n\r\n"
        ).encode()


class Refused(RuntimeError):
    def __init__(self, status: int, head: bytes) -> None:
        super().__init__(f"the follow did not open: {head!r}")
        self.status = status


async def _open(target: Target) -> tuple[AsyncIterator[bytes], asyncio.StreamWriter]:
    """A follow's answer, read up to its ``: following`` comment (subscribed). The writer is
    kept by the caller: a writer garbage-collected closes the connection."""
    reader, writer = await asyncio.open_connection(target.host, target.port, limit=2**22)
    writer.write(target.request())
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200") or b"chunked" not in head.lower():
        writer.close()
        raise Refused(int(head.split()[1]), head[:300])
    blocks = _blocks(reader)  # the same iterator goes on: a chunk may hold more blocks
    async for block in blocks:
        if block.startswith(b": following"):
            return blocks, writer
    raise RuntimeError("the follow ended before it was subscribed")


async def _blocks(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    """The SSE blocks (events, comments) of a chunked answer, as they come."""
    pending = b""
    while True:
        size = int((await reader.readline()).strip(), 16)
        if size == 0:
            return
        pending += (await reader.readexactly(size + 2))[:-2]
        while b"\n\n" in pending:
            block, pending = pending.split(b"\n\n", 1)
            yield block


def _event(block: bytes) -> tuple[str, dict[str, Any]] | None:
    """``(event, data)`` of an SSE block; None for a comment (heartbeat)."""
    if block.startswith(b":"):
        return None
    name, data = "message", b""
    for line in block.split(b"\n"):
        key, _, value = line.partition(b": ")
        if key == b"event":
            name = value.decode()
        elif key == b"data":
            data = value
    return name, json.loads(data)


@dataclass
class Follower:
    """A healthy follower's measurements: per line, its produce time and latency (s)."""

    at: array[float] = field(default_factory=lambda: array("d"))
    latency: array[float] = field(default_factory=lambda: array("d"))
    last_seen: set[str] = field(default_factory=set)  # phases whose ``last`` line came
    seen: asyncio.Event = field(default_factory=asyncio.Event)

    async def read(self, blocks: AsyncIterator[bytes]) -> None:
        async for block in blocks:
            arrived = time.time()
            event = _event(block)
            if event is None or event[0] != "line":
                if event is not None and event[0] == "skipped":
                    raise RuntimeError(f"a healthy follower was skipped: {event[1]}")
                continue
            text = event[1]["text"]
            if text.endswith(":last"):
                self.last_seen.add(text.partition(":")[0])
                self.seen.set()
                continue
            at = datetime.fromisoformat(event[1]["at"]).timestamp()
            self.at.append(at)
            self.latency.append(arrived - at)


async def _wait_last(followers: Sequence[Follower], tag: str, timeout_s: float) -> None:
    async with asyncio.timeout(timeout_s):
        for follower in followers:
            while tag not in follower.last_seen:
                follower.seen.clear()
                await follower.seen.wait()


async def _stalled(target: Target) -> socket.socket:
    """A follow on a socket with a small fixed receive buffer, read byte by byte up to its
    ``: following`` comment and then not at all (until ``_drain_stalled``)."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, STALLED_RCVBUF)
    sock.setblocking(False)
    await loop.sock_connect(sock, (target.host, target.port))
    await loop.sock_sendall(sock, target.request())
    opening = b""
    async with asyncio.timeout(60):
        while b": following\n\n" not in opening or not opening.endswith(b"\r\n"):
            byte = await loop.sock_recv(sock, 1)
            if not byte:
                raise RuntimeError(f"the stalled follow closed: {opening[:300]!r}")
            opening += byte
    if not opening.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"the stalled follow did not open: {opening[:300]!r}")
    return sock


async def _drain_stalled(sock: socket.socket, tag: str, timeout_s: float) -> dict[str, int]:
    """Read the stalled follow at last, up to the phase's ``last`` line: lines it was sent,
    lines it was told it missed."""
    reader, writer = await asyncio.open_connection(sock=sock, limit=2**22)
    got = {"lines": 0, "skipped_events": 0, "skipped_lines": 0, "complete": 0}
    try:
        async with asyncio.timeout(timeout_s):
            async for block in _blocks(reader):
                event = _event(block)
                if event is None:
                    continue
                if event[0] == "skipped":
                    got["skipped_events"] += 1
                    got["skipped_lines"] += int(event[1]["count"])
                elif event[0] == "line":
                    if event[1]["text"] == f"{tag}:last":
                        got["complete"] = 1
                        break
                    got["lines"] += 1
    except TimeoutError:
        pass
    finally:
        writer.close()
    return got


async def clients(
    mailbox: Any, target: Target, count: int, extra: bool, commands: Any, stop: Flag
) -> None:
    """``count`` healthy followers for the whole run; with ``extra``, each phase's 500th
    connection (healthy in A, stalled in B), opened and closed on the parent's commands."""
    followers = [Follower() for _ in range(count)]
    readers = await asyncio.gather(*(_open_paced(target, i) for i in range(count)))
    tasks = [asyncio.create_task(f.read(r)) for f, (r, _) in zip(followers, readers, strict=True)]
    mailbox.put((f"subscribed:{os.getpid()}", RETRIED))
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        for task in tasks:
            if task.done():
                task.result()  # a follow that broke is a failed run
                raise RuntimeError("a follow ended")
        try:
            command, tag = await loop.run_in_executor(None, commands.get, True, 0.5)
        except queue.Empty:
            continue
        if command == "open" and extra:
            await _extra_phase(mailbox, target, tag, followers, commands)
        elif command == "drain":
            await _wait_last(followers, tag, 300)
            mailbox.put((f"drained:{tag}:{os.getpid()}", None))
        elif command == "report":
            mailbox.put(
                (
                    f"report:{os.getpid()}",
                    [(f.at.tobytes(), f.latency.tobytes()) for f in followers],
                )
            )
    for task in tasks:
        task.cancel()


RETRIED = 0  # follows of this process that were refused at first (a 5xx or 429), then opened


async def _open_paced(target: Target, i: int) -> tuple[AsyncIterator[bytes], asyncio.StreamWriter]:
    """Opened as a client should: a refusal that says "later" (504 UPSTREAM_TIMEOUT, 503,
    429: the logs service busy accepting hundreds of follows at once on a loaded machine) is
    retried after a second, as an EventSource reconnects."""
    global RETRIED
    await asyncio.sleep(i * 0.01)  # a few at a time, not 250 handshakes in one instant
    for attempt in range(30):
        try:
            return await _open(target)
        except Refused as refused:
            if refused.status not in (429, 503, 504) or attempt == 29:
                raise
            RETRIED += attempt == 0
            await asyncio.sleep(1)
    raise AssertionError("unreachable")


async def _extra_phase(
    mailbox: Any, target: Target, tag: str, followers: list[Follower], commands: Any
) -> None:
    loop = asyncio.get_running_loop()
    stalled = tag.startswith("B")
    if stalled:
        sock = await _stalled(target)
    else:
        healthy = Follower()
        reader, writer = await _open_paced(target, 0)
        task = asyncio.create_task(healthy.read(reader))
    mailbox.put((f"opened:{tag}", None))
    command, _ = await loop.run_in_executor(None, commands.get)  # "drain" of this phase
    assert command == "drain", command
    await _wait_last(followers, tag, 300)
    mailbox.put((f"drained:{tag}:{os.getpid()}", None))
    if stalled:
        mailbox.put((f"stalled:{tag}", await _drain_stalled(sock, tag, 60)))
    else:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        writer.close()
        mailbox.put((f"stalled:{tag}", None))


# --- orchestration ------------------------------------------------------------------------------


@dataclass
class Phase:
    tag: str
    start: float  # wall clock: the window of produce times that counts
    end: float
    pacing: Pacing
    cores: dict[str, float]
    stalled: dict[str, int] | None = None
    pooled: Latencies | None = None
    per_follower_p99: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class LatencyRun:
    rate: int
    latencies: Latencies
    pacing: Pacing
    cores: dict[str, float]


@dataclass
class Result:
    params: Params
    latency: list[LatencyRun]
    phases: list[Phase]
    connect_s: float
    retried: int  # follows refused at first (504/503/429), opened on a retry
    facts: dict[str, str]


async def _service(api: httpx.AsyncClient) -> tuple[User, str, str]:
    owner = await sign_up(api, "Bench")
    org = await create_org(api, owner)
    clusters = (await api.get(f"/organizations/{org}/clusters", headers=owner.auth)).json()
    project = await api.post(
        f"/organizations/{org}/projects", json={"name": "Follow bench"}, headers=owner.auth
    )
    env = await api.post(
        f"/projects/{project.json()['id']}/environments",
        headers=owner.auth,
        json={"name": "staging", "mode": "staging", "cluster_id": clusters["items"][0]["id"]},
    )
    if env.status_code != 201:
        raise RuntimeError(f"environment: {env.status_code} {env.text}")
    created = await api.post(
        f"/environments/{env.json()['id']}/services",
        headers=owner.auth,
        json={
            "name": "talker",
            "kind": "container",
            "image": {"registry": "registry.example", "name": "talker", "tag": "1"},
            "ports": [{"port": 8080}],
        },
    )
    if created.status_code != 201:
        raise RuntimeError(f"service: {created.status_code} {created.text}")
    return owner, org, str(created.json()["id"])


async def _until_follows(api: httpx.AsyncClient, owner: User, service_id: str) -> None:
    """The gateway knows the new service (its catalog index follows the catalog's events)."""
    deadline = time.monotonic() + 60
    while True:
        page = await api.get(f"/services/{service_id}/logs", headers=owner.auth)
        if page.status_code == 200:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the service's logs never answered: {page.text}")
        await asyncio.sleep(0.2)


def _latencies(
    reports: Sequence[tuple[bytes, bytes]], start: float, end: float
) -> tuple[list[float], list[float]]:
    """Pooled latencies (ms) of lines produced in [start, end], and each follower's p99."""
    pooled: list[float] = []
    p99s: list[float] = []
    for raw_at, raw_latency in reports:
        at, latency = array("d"), array("d")
        at.frombytes(raw_at)
        latency.frombytes(raw_latency)
        mine = sorted(lat * 1000 for a, lat in zip(at, latency, strict=True) if start <= a <= end)
        if mine:
            pooled += mine
            p99s.append(Latencies.of(mine).p99)
    return pooled, p99s


async def run(devstack: Devstack, params: Params | None = None) -> str:
    params = params or Params()
    env = {
        "SLIPWAY_IDENTITY_ACCESS_TOKEN_TTL_S": "86400",
        "SLIPWAY_GATEWAY_FOLLOWS_PER_PRINCIPAL": str(FOLLOWS_PER_PRINCIPAL),
        **(
            {"SLIPWAY_LOGS_FOLLOW_BACKLOG_BYTES": str(params.backlog_bytes)}
            if params.backlog_bytes
            else {}
        ),
        **({"SLIPWAY_LOG_LEVEL": "INFO"} if KEEP_LOGS else {}),
    }
    async with (
        bench_platform(devstack, SERVICES, env, keep_logs=KEEP_LOGS) as platform,
        other_work(devstack) as other,
    ):
        result = await _measure(devstack, platform, params)
    result.facts["Other work during the run"] = other.describe()
    result.facts["Load average at the end (1, 5, 15 min)"] = " ".join(
        f"{x:.2f}" for x in os.getloadavg()
    )
    return render(result, other.share)


async def _measure(devstack: Devstack, platform: Platform, params: Params) -> Result:
    gateway = httpx.URL(platform.url("gateway"))
    async with httpx.AsyncClient(base_url=f"{gateway}/api/v1", timeout=30) as api:
        owner, org, service_id = await _service(api)
        await _until_follows(api, owner, service_id)
    target = Target(
        host=str(gateway.host),
        port=int(gateway.port or 80),
        path=f"/api/v1/services/{service_id}/logs",
        authorization=owner.auth["authorization"],
    )
    producer = Producer(platform, org, service_id)
    await producer.kafka.start()
    try:
        pids = {n: s.process.pid for n, s in platform.services.items() if s.process}
        pids["bench (producer)"] = os.getpid()
        facts = await machine(devstack)
        latency = []
        for rate in params.latency_rates:
            print(f"logs_follow: one follower, {rate:,} lines/s...", flush=True)
            latency.append(await _latency_run(target, producer, params, rate, pids, devstack))
        print(f"logs_follow: {params.followers} followers, phases {params.phases}...", flush=True)
        phases, connect_s, retried = await _fanout_run(target, producer, params, pids, devstack)
    finally:
        await producer.kafka.stop()
    return Result(params, latency, phases, connect_s, retried, facts)


async def _latency_run(
    target: Target,
    producer: Producer,
    params: Params,
    rate: int,
    pids: dict[str, int],
    devstack: Devstack,
) -> LatencyRun:
    mailbox, stop, commands = Mailbox(), Flag(), SPAWN.Queue()
    with mailbox.worker(clients, target, 1, False, commands, stop) as proc:
        await mailbox.wait(f"subscribed:{proc.pid}", 60)
        before = cpu_snapshot({**pids, "follower": proc.pid}, devstack)
        started = time.time()
        tag = f"L{rate}"
        pacing = await producer.run(
            tag,
            rate,
            params.latency_duration_s,
            max(1, min(params.lines_per_event, rate // 100)),
            40,
        )
        commands.put(("drain", tag))
        await mailbox.wait(f"drained:{tag}:{proc.pid}", 330)
        after = cpu_snapshot({**pids, "follower": proc.pid}, devstack)
        commands.put(("report", ""))
        reports = await mailbox.wait(f"report:{proc.pid}", 60)
    pooled, _ = _latencies(reports, started + params.warmup_s, math.inf)
    return LatencyRun(rate, Latencies.of(pooled), pacing, cores_used(before, after, rest="Other"))


async def _fanout_run(
    target: Target, producer: Producer, params: Params, pids: dict[str, int], devstack: Devstack
) -> tuple[list[Phase], float, int]:
    mailbox, stop = Mailbox(), Flag()
    healthy = params.followers - 1
    counts = [
        healthy // params.client_processes + (i < healthy % params.client_processes)
        for i in range(params.client_processes)
    ]
    queues = [SPAWN.Queue() for _ in counts]
    phases: list[Phase] = []
    with contextlib.ExitStack() as stack:
        began = time.monotonic()
        procs = [
            stack.enter_context(mailbox.worker(clients, target, n, i == 0, queues[i], stop))
            for i, n in enumerate(counts)
        ]
        retried = 0
        for proc in procs:
            retried += await mailbox.wait(f"subscribed:{proc.pid}", 600)
        connect_s = time.monotonic() - began
        workers = {**pids, **{f"clients {i + 1}": p.pid for i, p in enumerate(procs)}}
        for n, kind in enumerate(params.phases):
            tag = f"{kind}{n}"
            queues[0].put(("open", tag))
            await mailbox.wait(f"opened:{tag}", 60)
            before: CpuSnapshot = cpu_snapshot(workers, devstack)
            started = time.time()
            pacing = await producer.run(
                tag,
                params.fanout_rate,
                params.fanout_duration_s,
                1,
                params.fanout_line_bytes,
            )
            ended = time.time()
            for q in queues:
                q.put(("drain", tag))
            for proc in procs:
                await mailbox.wait(f"drained:{tag}:{proc.pid}", 330)
            after = cpu_snapshot(workers, devstack)
            stalled = await mailbox.wait(f"stalled:{tag}", 400)
            phases.append(
                Phase(
                    tag,
                    started + params.warmup_s,
                    ended,
                    pacing,
                    cores_used(before, after, rest="Other"),
                    stalled,
                )
            )
            print(f"logs_follow: phase {tag} done", flush=True)
        reports: list[tuple[bytes, bytes]] = []
        for i, proc in enumerate(procs):
            queues[i].put(("report", ""))
            reports += await mailbox.wait(f"report:{proc.pid}", 120)
    for phase in phases:
        pooled, p99s = _latencies(reports, phase.start, phase.end)
        phase.pooled = Latencies.of(pooled)
        phase.per_follower_p99 = p99s
    return phases, connect_s, retried


# --- report -------------------------------------------------------------------------------------


def _ms(value: float) -> str:
    return f"{value:,.1f}"


def render(result: Result, other_share: float) -> str:
    p = result.params
    a = [ph for ph in result.phases if ph.tag.startswith("A")]
    b = [ph for ph in result.phases if ph.tag.startswith("B")]

    def p99(phases: list[Phase]) -> float:
        return statistics.median(ph.pooled.p99 for ph in phases if ph.pooled)

    ratio = p99(b) / p99(a) if a and b else math.nan
    pairs = [
        bp.pooled.p99 / ap.pooled.p99
        for ap, bp in zip(a, b, strict=False)
        if ap.pooled and bp.pooled
    ]
    target = result.latency[0]
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Logs follow",
        "",
        f"Run {now} by `bench/logs_follow.py`: a real platform (identity, catalog, logs, "
        "gateway as processes; the devstack's Kafka and PostgreSQL), lines produced to "
        "`logs.lines.v1` with their produce time as `at`, followers through the gateway "
        "(`GET /api/v1/services/{id}/logs?follow=true`, Server-Sent Events); latency = arrival "
        "at the follower - `at` (one host, one clock).",
        "",
    ]
    if other_share > NOISY_SHARE:
        lines += [
            f"> **Noisy run**: other processes used {other_share:.0%} of the cores meanwhile "
            "(other engineers' tests on this shared 2-core machine; see *Machine*). The "
            "platform's processes got a fraction of a core each, so the latencies below are "
            "mostly time spent waiting for a CPU: a floor for the design, not its figure. Only "
            "ratios measured in the same run (B / A) compare like with like.",
            "",
        ]
    lines += [
        "## Produce → follower latency",
        "",
        f"One follower in a process of its own, lines produced for {p.latency_duration_s:g} s "
        f"at each rate (events of up to {p.lines_per_event} lines, every 10 ms, on a monotonic "
        f"schedule); the first {p.warmup_s:g} s left out. Target at {target.rate:,} lines/s: p99 "
        f"< {TARGET_P99_MS} ms: {verdict(target.latencies.p99 < TARGET_P99_MS)} "
        f"({_ms(target.latencies.p99)} ms).",
        "",
        "| rate, lines/s | lines measured | p50, ms | p95, ms | p99, ms | max, ms "
        "| produced, lines/s | late ticks |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in result.latency:
        lat, pacing = run.latencies, run.pacing
        lines.append(
            f"| {run.rate:,} | {lat.samples:,} | {_ms(lat.p50)} | {_ms(lat.p95)} | "
            f"{_ms(lat.p99)} | {_ms(lat.max)} | {pacing.rate:,.0f} | {pacing.late_ticks} "
            f"(worst {pacing.worst_lag_ms:,.0f} ms) |"
        )
    lines += ["", "CPU used during each, in cores:", ""]
    lines += [f"- {run.rate:,} lines/s: {_cores(run.cores)}" for run in result.latency]
    lines += [
        "",
        f"## {p.followers} followers of one service, one of them stalled",
        "",
        f"{p.followers - 1} healthy followers over {p.client_processes} client processes, "
        f"connected for the whole run (all {p.followers - 1} subscribed in "
        f"{result.connect_s:.1f} s, {result.retried} of them after a first 504/503/429 "
        f"retried a second later); each phase adds a {p.followers}th connection: **A** a "
        f"healthy one, **B** a stalled one (receive buffer {STALLED_RCVBUF:,} bytes, never read "
        f"while the phase runs). {p.fanout_rate} lines/s of {p.fanout_line_bytes:,} bytes for "
        f"{p.fanout_duration_s:g} s a phase ({p.fanout_rate * (p.followers - 1):,} deliveries/s "
        f"to the healthy followers), phases {' '.join(p.phases)}; the first {p.warmup_s:g} s of "
        "each left out. Latencies pooled over every line of every healthy follower.",
        "",
        f"Target: the healthy followers' p99 with the stalled one within {TARGET_RATIO - 1:.0%} "
        f"of without: B / A = **{ratio:.2f}** (medians of the phases' p99s; per A-B pair: "
        f"{', '.join(f'{r:.2f}' for r in pairs)}): {verdict(ratio <= TARGET_RATIO)}"
        + (
            f". The pairs' ratios range from {min(pairs):.2f} to {max(pairs):.2f}: the "
            "difference is below what this run could resolve."
            if pairs and min(pairs) < 1 < max(pairs)
            else "."
        ),
        "",
        "| phase | lines measured | p50, ms | p99, ms | max, ms | followers' own p99s: median, "
        "worst, ms | stalled follower at the end |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for ph in result.phases:
        pooled = ph.pooled
        assert pooled is not None
        own = sorted(ph.per_follower_p99)
        stalled = "—"
        if ph.stalled is not None:
            s = ph.stalled
            stalled = (
                f"{s['lines']:,} lines sent, {s['skipped_lines']:,} skipped "
                f"({s['skipped_events']} `skipped` events)"
                + ("" if s["complete"] else ", not read to its end in 60 s")
            )
        lines.append(
            f"| {ph.tag} | {pooled.samples:,} | {_ms(pooled.p50)} | {_ms(pooled.p99)} | "
            f"{_ms(pooled.max)} | {_ms(statistics.median(own)) if own else '—'}, "
            f"{_ms(own[-1]) if own else '—'} | {stalled} |"
        )
    lines += ["", "CPU used per phase, in cores:", ""]
    lines += [f"- {ph.tag}: {_cores(ph.cores)}" for ph in result.phases]
    lines += [
        "",
        "Settings of this platform: `SLIPWAY_GATEWAY_FOLLOWS_PER_PRINCIPAL="
        f"{FOLLOWS_PER_PRINCIPAL}` (one user holds every follow; the product's default, 20, is "
        "unchanged); the logs service's defaults otherwise (backlog 10,000 lines / "
        + (
            f"{p.backlog_bytes:,} bytes (a benchmark setting: the default is 4 MiB) "
            if p.backlog_bytes
            else "4 MiB "
        )
        + "per follower, 1,000 follows per process).",
        "",
        *machine_section(result.facts),
    ]
    return "\n".join(lines)


def _cores(used: dict[str, float]) -> str:
    # below zero: other users' backends that ended took their ticks away (support.cores_used)
    return ", ".join(
        f"{k} {v:.2f}" if v >= 0 else f"{k} n/a"
        for k, v in sorted(used.items(), key=lambda kv: -kv[1])
    )


def parse_args() -> Params:
    defaults = Params()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--latency-rates",
        type=lambda v: tuple(int(x) for x in v.split(",")),
        default=defaults.latency_rates,
        help="comma-separated lines/s, one follower run each (the first is the target's)",
    )
    parser.add_argument("--latency-duration", type=float, default=defaults.latency_duration_s)
    parser.add_argument("--warmup", type=float, default=defaults.warmup_s)
    parser.add_argument("--followers", type=int, default=defaults.followers)
    parser.add_argument("--client-processes", type=int, default=defaults.client_processes)
    parser.add_argument("--fanout-rate", type=int, default=defaults.fanout_rate)
    parser.add_argument("--fanout-line-bytes", type=int, default=defaults.fanout_line_bytes)
    parser.add_argument("--fanout-duration", type=float, default=defaults.fanout_duration_s)
    parser.add_argument("--phases", default=defaults.phases)
    parser.add_argument(
        "--backlog-bytes",
        type=int,
        default=defaults.backlog_bytes,
        help="the logs service's per-follower backlog of line text (default: the service's)",
    )
    args = parser.parse_args()
    return Params(
        latency_rates=args.latency_rates,
        latency_duration_s=args.latency_duration,
        warmup_s=args.warmup,
        followers=args.followers,
        client_processes=args.client_processes,
        fanout_rate=args.fanout_rate,
        fanout_line_bytes=args.fanout_line_bytes,
        fanout_duration_s=args.fanout_duration,
        phases=args.phases,
        backlog_bytes=args.backlog_bytes,
    )


SECTION = "# Logs follow"


def merged(existing: str, section: str) -> str:
    """``results/logs.md`` with its follow section (from ``SECTION`` on) replaced by
    ``section``; the ingest and search sections before it kept."""
    head, _, _ = existing.partition(f"\n{SECTION}\n")
    return f"{head.rstrip()}\n\n{section}" if head.strip() else section


async def _alone(params: Params) -> None:
    section = await run(load_devstack(), params)
    path = RESULTS / "logs.md"
    path.write_text(merged(path.read_text() if path.exists() else "", section))
    print(f"\n{section}\n(written to {path})", flush=True)


if __name__ == "__main__":
    arguments = parse_args()
    quiet_logging()
    try:
        asyncio.run(_alone(arguments))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted: benchmark resources cleaned up", file=sys.stderr)
        sys.exit(130)
