"""The gateway's forwarding client alone: CPU per forwarded request of ``UpstreamPool`` (what the
gateway forwards with) against aiohttp (what it forwarded with before; the deployer still uses
it), in the same run, against the same upstream.

    .venv/bin/python bench/run.py --only upstream_client

The upstream is a minimal keep-alive HTTP/1.1 server in a child process, answering every request
with the same identity-sized JSON body, so the client's process measures only the client: its
CPU time (``time.process_time``) over a closed loop of GETs with the headers the gateway sends,
under uvloop as the gateway runs. Rounds A B B A (aiohttp, pool, pool, aiohttp) so a drift of
the machine during the run falls on both; the ratio is pool over aiohttp, lower is better.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

REQUESTS = 20_000
CONCURRENCY = 8
WARMUP = 500
ORDER = ("aiohttp", "pool", "pool", "aiohttp")
TARGET_RATIO = 0.5  # the pool at most half aiohttp's CPU per request

BODY = json.dumps(
    {
        "id": "6f1c8a3e-0b7a-4d5c-9a55-2f0c1e2d3b4a",
        "name": "Acme",
        "slug": "acme",
        "created_at": "2026-12-06T01:00:00+00:00",
        "version": 3,
    }
).encode()
# what the gateway sends a service with every request (lengths as in production)
HEADERS = {
    "x-slipway-internal-token": "t" * 43,
    "x-slipway-actor": "u" * 120,
    "x-correlation-id": "c" * 32,
}
PATH = "/internal/v1/organizations/6f1c8a3e-0b7a-4d5c-9a55-2f0c1e2d3b4a"

UPSTREAM = """
import asyncio, sys
BODY = %r
ANSWER = (
    b"HTTP/1.1 200 OK\\r\\ncontent-type: application/json\\r\\nx-slipway-revision: 42\\r\\n"
    b"date: Sun, 06 Dec 2026 01:00:00 GMT\\r\\nserver: uvicorn\\r\\ncontent-length: "
    + str(len(BODY)).encode() + b"\\r\\n\\r\\n" + BODY
)
async def handle(reader, writer):
    try:
        while True:
            await reader.readuntil(b"\\r\\n\\r\\n")
            writer.write(ANSWER)
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()
asyncio.run(main())
"""


@dataclass(frozen=True)
class Round:
    client: str
    cpu_us: float  # CPU per request, this process
    rate: float  # requests/s (wall clock; the upstream shares the machine)


async def _measure(one: Callable[[], Awaitable[object]], requests: int) -> tuple[float, float]:
    for _ in range(WARMUP):
        await one()
    per_worker = requests // CONCURRENCY

    async def worker() -> None:
        for _ in range(per_worker):
            await one()

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    done = per_worker * CONCURRENCY
    return (time.process_time() - cpu) / done * 1e6, done / (time.perf_counter() - wall)


async def _aiohttp(url: str, requests: int) -> tuple[float, float]:
    import aiohttp
    from yarl import URL

    # as the gateway's forwarding session was configured (services/gateway before the pool)
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=256, limit_per_host=0),
        timeout=aiohttp.ClientTimeout(total=None, connect=10, sock_connect=10, sock_read=10),
        cookie_jar=aiohttp.DummyCookieJar(),
        skip_auto_headers=("User-Agent", "Accept-Encoding"),
    )
    target = URL(url + PATH, encoded=True)

    async def one() -> object:
        async with session.request(
            "GET", target, data=None, headers=HEADERS, allow_redirects=False
        ) as answer:
            return answer.status, answer.headers, await answer.read()

    try:
        return await _measure(one, requests)
    finally:
        await session.close()


async def _pool(url: str, requests: int) -> tuple[float, float]:
    from slipway_gateway.api.upstream_http import UpstreamPool, split_url

    pool = UpstreamPool(connections=256, connect_timeout_s=10, read_timeout_s=10)
    origin, prefix = split_url(url)

    async def one() -> object:
        return await pool.request(origin, "GET", prefix + PATH, headers=HEADERS)

    try:
        return await _measure(one, requests)
    finally:
        await pool.aclose()


def _child(url: str, client: str, requests: int) -> None:
    """One round in a fresh process (nothing of the other client's left in it), under uvloop."""
    import uvloop

    measure = _aiohttp if client == "aiohttp" else _pool
    cpu_us, rate = uvloop.run(measure(url, requests))
    print(json.dumps({"cpu_us": cpu_us, "rate": rate}), flush=True)


async def measure(requests: int = REQUESTS) -> list[Round]:
    upstream = await asyncio.create_subprocess_exec(
        sys.executable, "-c", UPSTREAM % BODY, stdout=subprocess.PIPE
    )
    try:
        assert upstream.stdout is not None
        url = f"http://127.0.0.1:{int(await upstream.stdout.readline())}"
        rounds = []
        for client in ORDER:
            child = await asyncio.create_subprocess_exec(
                sys.executable,
                __file__,
                "--child",
                url,
                client,
                str(requests),
                stdout=subprocess.PIPE,
            )
            out, _ = await child.communicate()
            if child.returncode != 0:
                raise RuntimeError(f"the {client} round failed ({child.returncode})")
            found = json.loads(out.decode().strip().splitlines()[-1])
            rounds.append(Round(client, found["cpu_us"], found["rate"]))
            print(f"upstream_client: {client} {found['cpu_us']:.1f} µs CPU/request", flush=True)
        return rounds
    finally:
        upstream.kill()
        await upstream.wait()


def render(rounds: list[Round]) -> str:
    def median(client: str, field: str) -> float:
        return statistics.median(getattr(r, field) for r in rounds if r.client == client)

    old, new = median("aiohttp", "cpu_us"), median("pool", "cpu_us")
    ratio = new / old
    verdict = "**PASS**" if ratio <= TARGET_RATIO else "**FAIL**"
    shown = " · ".join(f"{r.client} {r.cpu_us:,.1f}" for r in rounds)
    return "\n".join(
        [
            "# The gateway's forwarding client alone (issue 15)",
            "",
            f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `bench/upstream_client.py` on "
            f"{os.cpu_count()} cores (load average {os.getloadavg()[0]:.2f} at the end). "
            f"Target: the gateway's client (`UpstreamPool`) at most {TARGET_RATIO:g} of "
            f"aiohttp's CPU per forwarded request, same run: {verdict} (ratio {ratio:.2f}).",
            "",
            "| Client | CPU µs/request (median of 2) | requests/s (median of 2) |",
            "|---|---:|---:|",
            f"| aiohttp (before) | {old:,.1f} | {median('aiohttp', 'rate'):,.0f} |",
            f"| `UpstreamPool` (now) | {new:,.1f} | {median('pool', 'rate'):,.0f} |",
            "",
            f"- Rounds in order (µs/request): {shown}.",
            f"- Each round: a fresh process under uvloop, {WARMUP:,} warm-up requests, then "
            f"{REQUESTS:,} GETs in a closed loop at concurrency {CONCURRENCY} over kept-alive "
            f"connections, with the headers the gateway sends; CPU is the client process's "
            f"(`time.process_time`). The upstream is a minimal HTTP/1.1 server in another "
            f"process answering a {len(BODY)}-byte JSON body, so requests/s is bounded by it "
            "and by the shared cores: CPU per request is the figure.",
        ]
    )


async def run() -> str:
    return render(await measure())


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        _child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        print(asyncio.run(run()))
