"""The gateway's share of a request (issue 15): an authorized read and a deploy request through
the shipped gateway, against the same requests sent straight to the service behind it, at
concurrency 1, 8 and 64.

    .venv/bin/python bench/gateway.py [--rounds 4] [--requests 2000] [--concurrency 1,8,64]
                                      [--deploy-requests 500] [--no-deploy]

Starts identity, catalog, deployer and the gateway as the platform runs them
(``python -m slipway_<name> run``: fresh databases, own topic prefix), signs a user up, creates
an organization, a project and environments with one ``cronjob`` service each (a deployment of
it runs the deployer's whole control plane, but nothing is started), then, closed loop over
keep-alive connections:

- **read**: ``GET /api/v1/organizations/{org}`` through the gateway (session token:
  authentication, the policy decision, the path checks, the forward) against identity's internal
  route with the headers the gateway sends (internal token, actor naming the organization:
  identity's tenant binding runs in both);
- **deploy**: ``POST /api/v1/environments/{env}/deploy`` through the gateway against the
  deployer's internal route with the headers the gateway sends (internal token, actor, the
  caller's catalog revision); each connection deploys its own environment (a request merges
  into that environment's queued deployment, or queues the next one; answered 202 either way).

At each concurrency the two targets run in alternating chunks (gateway, service, service,
gateway, ...) so that a slow spell of the shared machine hits both. Besides latency and
requests/s it counts each process's CPU time (``/proc/<pid>/stat``) per request: what the code
costs, apart from the waiting. Writes ``bench/results/gateway.md``. Everything it started is
stopped, its databases dropped and its topics deleted, also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from deploy_overhead import PLANE, Stack, service_body
from gateway_authz import Connection, Phase, eventually, sign_up
from support import (
    Devstack,
    Latencies,
    bench_platform,
    load_devstack,
    machine,
    machine_section,
    main_alone,
    verdict,
)

from slipway_gateway.api.table import ROUTES
from slipway_libs.actor import ACTOR_HEADER, INTERNAL_TOKEN_HEADER, Actor
from slipway_libs.changes import REVISION_HEADER
from slipway_libs.testing.platform import Platform

TARGET_RATE = 2_000.0  # authorized reads/s through the gateway
TARGET_ADDED_P99_MS = 2.0  # what the gateway adds at p99, one request at a time
GATEWAY = "gateway"
READ, DEPLOY = "read", "deploy"
SERVICE_OF = {READ: "identity", DEPLOY: "deployer"}
EXPECTED = {READ: 200, DEPLOY: 202}
CHUNKS = 4  # per round and concurrency: chunks per target, taken in turn
TICK_S = 1 / os.sysconf("SC_CLK_TCK")
READ_ORG = next(r for r in ROUTES if r.method == "GET" and r.path == "/organizations/{org}")
DEPLOY_ENV = next(
    r for r in ROUTES if r.method == "POST" and r.path == "/environments/{environment}/deploy"
)


@dataclass(frozen=True)
class Params:
    rounds: int = 4
    requests: int = 2_000  # reads per target, per round, per concurrency
    deploy_requests: int = 500  # deploy requests per target, per round, per concurrency
    concurrency: tuple[int, ...] = (1, 8, 64)
    warmup: int = 300  # per target and concurrency, not counted
    deploy: bool = True

    @property
    def kinds(self) -> tuple[str, ...]:
        return (READ, DEPLOY) if self.deploy else (READ,)

    def size(self, kind: str) -> int:
        return self.requests if kind == READ else self.deploy_requests


@contextlib.asynccontextmanager
async def the_platform(devstack: Devstack, params: Params) -> AsyncIterator[Platform]:
    """identity and the shipped gateway (with catalog and deployer for the deploy requests),
    ready; logs removed afterwards (kept when something failed)."""
    services = ["identity", "catalog", "deployer", "gateway"] if params.deploy else []
    services = services or ["identity", "gateway"]
    extra = Stack.of(devstack).platform_env() if params.deploy else None
    async with bench_platform(devstack, services, extra) as platform:
        yield platform


@dataclass(frozen=True)
class Target:
    """One side of a comparison: a port and the raw requests its connections send (connection
    ``i`` sends ``raws[i % len(raws)]``)."""

    process: str
    port: int
    raws: tuple[bytes, ...]


def _raw(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: 127.0.0.1",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    if method == "POST":
        lines.append("Content-Length: 0")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def set_up(
    platform: Platform, devstack: Devstack, params: Params
) -> dict[str, dict[str, Target]]:
    """A user and their organization (and for deploys a project with environments); the raw
    requests of each kind and target, each checked to answer as expected."""
    services = platform.services
    internal = {INTERNAL_TOKEN_HEADER: platform.env["SLIPWAY_INTERNAL_TOKEN"]}
    async with httpx.AsyncClient(base_url=f"{services[GATEWAY].url}/api/v1", timeout=30) as api:
        user_id, token = await sign_up(api)
        auth = {"authorization": f"Bearer {token}"}
        org_id = (await _call(api, "POST", "/organizations", auth, {"name": "Bench"}, 201))["id"]

        async def served() -> bool:
            return (await api.get(f"/organizations/{org_id}", headers=auth)).status_code == 200

        await eventually(served, within_s=30)
        actor = Actor(
            type="user",
            id=user_id,
            user_id=uuid.UUID(user_id),
            organization_role="owner",
            organization_id=uuid.UUID(org_id),
        ).header()
        public = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        direct = internal | {ACTOR_HEADER: actor, "Accept": "application/json"}
        targets = {
            READ: {
                GATEWAY: Target(
                    GATEWAY,
                    services[GATEWAY].port,
                    (_raw("GET", f"/api/v1/organizations/{org_id}", public),),
                ),
                "identity": Target(
                    "identity",
                    services["identity"].port,
                    (_raw("GET", READ_ORG.upstream_path.format(org=org_id), direct),),
                ),
            }
        }
        if params.deploy:
            envs, revision = await environments(
                api, auth, org_id, devstack, max(params.concurrency)
            )
            through = [_raw("POST", f"/api/v1/environments/{e}/deploy", public) for e in envs]
            straight = direct | {REVISION_HEADER: revision}
            path = DEPLOY_ENV.upstream_path
            targets[DEPLOY] = {
                GATEWAY: Target(GATEWAY, services[GATEWAY].port, tuple(through)),
                "deployer": Target(
                    "deployer",
                    services["deployer"].port,
                    tuple(_raw("POST", path.format(environment=e), straight) for e in envs),
                ),
            }
    return targets


async def environments(
    api: httpx.AsyncClient, auth: dict[str, str], org_id: str, devstack: Devstack, n: int
) -> tuple[list[str], str]:
    """``n`` environments of one project, each with a cronjob service, known to the deployer
    (each answers its status); the catalog revision the last write reached (what the gateway
    adds to this caller's deployer requests)."""

    async def cluster() -> bool:
        listed = await _call(api, "GET", f"/organizations/{org_id}/clusters", auth)
        return bool(listed["items"])

    await eventually(cluster, within_s=60)
    clusters = await _call(api, "GET", f"/organizations/{org_id}/clusters", auth)
    cluster_id = clusters["items"][0]["id"]
    project = await _call(
        api, "POST", f"/organizations/{org_id}/projects", auth, {"name": "Fleet"}, 201
    )
    body = service_body(PLANE, Stack.of(devstack))
    envs, revision = [], ""
    for index in range(n):
        created = await _call(
            api,
            "POST",
            f"/projects/{project['id']}/environments",
            auth,
            {"name": f"e{index}", "mode": "staging", "cluster_id": cluster_id},
            201,
        )
        service = await api.post(f"/environments/{created['id']}/services", json=body, headers=auth)
        if service.status_code != 201:
            raise RuntimeError(f"create service: {service.status_code} {service.text[:300]}")
        revision = service.headers.get(REVISION_HEADER, revision)
        envs.append(created["id"])
    for env_id in envs:

        async def known(env_id: str = env_id) -> bool:
            status = await api.get(f"/environments/{env_id}/status", headers=auth)
            return status.status_code == 200 and len(status.json()["services"]) == 1

        await eventually(known, within_s=120)
    return envs, revision


async def _call(
    api: httpx.AsyncClient,
    method: str,
    path: str,
    auth: dict[str, str],
    body: Any = None,
    expect: int = 200,
) -> Any:
    response = await api.request(method, path, json=body, headers=auth)
    if response.status_code != expect:
        raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:300]}")
    return response.json()


def cpu_ticks(pid: int) -> int:
    """utime + stime of a process (all its threads), in clock ticks."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])


async def load(target: Target, total: int, concurrency: int, expect: int) -> Phase:
    """``total`` requests by ``concurrency`` workers, each sending its next request as soon as
    its previous one is answered; every latency from write to last body byte."""
    connections = [await Connection.open(target.port) for _ in range(concurrency)]
    latencies: list[float] = []
    remaining = total
    clock = time.perf_counter

    async def worker(index: int, connection: Connection) -> None:
        nonlocal remaining
        raw = target.raws[index % len(target.raws)]
        while remaining > 0:
            remaining -= 1
            began = clock()
            status = await connection.request(raw)
            latencies.append((clock() - began) * 1000)
            if status != expect:
                raise RuntimeError(f"{target.process}: answered {status}")

    try:
        began = clock()
        await asyncio.gather(*(worker(i, c) for i, c in enumerate(connections)))
        elapsed = clock() - began
    finally:
        for connection in connections:
            await connection.close()
    return Phase(target.process, concurrency, latencies, elapsed)


@dataclass
class Measured:
    """One target of one kind at one concurrency, pooled over rounds."""

    latencies_ms: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0
    rates: list[float] = field(default_factory=list)  # per round
    cpu_s: dict[str, float] = field(default_factory=dict)  # process -> CPU seconds spent

    @property
    def rate(self) -> float:
        return len(self.latencies_ms) / self.elapsed_s

    def add(self, other: Measured) -> None:
        self.latencies_ms += other.latencies_ms
        self.elapsed_s += other.elapsed_s
        self.rates.append(other.rate)
        for process, spent in other.cpu_s.items():
            self.cpu_s[process] = self.cpu_s.get(process, 0.0) + spent


Results = dict[tuple[str, int, str], Measured]  # (kind, concurrency, target process) -> pooled


async def measure(
    targets: dict[str, dict[str, Target]], pids: dict[str, int], params: Params
) -> Results:
    """Each kind in turn, all its rounds (the reads first: the deploy requests leave the
    deployer with deployments to run, which would weigh on reads measured after them)."""
    results: Results = {}
    for kind in params.kinds:
        order = list(targets[kind])
        for concurrency in params.concurrency:
            for name in order:
                results[(kind, concurrency, name)] = Measured()
                await load(targets[kind][name], params.warmup, concurrency, EXPECTED[kind])
        size = -(-params.size(kind) // CHUNKS)
        for index in range(params.rounds):
            line = []
            for concurrency in params.concurrency:
                got = {name: Measured() for name in order}
                for chunk in range(CHUNKS):
                    for name in order if (chunk + index) % 2 == 0 else order[::-1]:
                        before = {p: cpu_ticks(pid) for p, pid in pids.items()}
                        phase = await load(targets[kind][name], size, concurrency, EXPECTED[kind])
                        after = {p: cpu_ticks(pid) for p, pid in pids.items()}
                        one = got[name]
                        one.latencies_ms += phase.latencies_ms
                        one.elapsed_s += phase.elapsed_s
                        for p in pids:
                            one.cpu_s[p] = one.cpu_s.get(p, 0.0) + (after[p] - before[p]) * TICK_S
                for name, one in got.items():
                    results[(kind, concurrency, name)].add(one)
                line.append(
                    f"c{concurrency} " + " ".join(f"{n} {m.rate:,.0f}/s" for n, m in got.items())
                )
            print(
                f"gateway: {kind} round {index + 1}/{params.rounds}: " + ", ".join(line), flush=True
            )
    return results


def render(
    params: Params, results: Results, machine: dict[str, str], loads: Sequence[float]
) -> str:
    saturated = [c for c in params.concurrency if c > 1]
    best = max((results[(READ, c, GATEWAY)].rate for c in saturated), default=0.0)
    rate_ok = best >= TARGET_RATE
    added = {}
    if 1 in params.concurrency:
        for kind in params.kinds:
            g = Latencies.of(results[(kind, 1, GATEWAY)].latencies_ms)
            s = Latencies.of(results[(kind, 1, SERVICE_OF[kind])].latencies_ms)
            added[kind] = g.p99 - s.p99
    added_ok = bool(added) and all(a < TARGET_ADDED_P99_MS for a in added.values())
    shown_added = ", ".join(f"{kind} {a:+.2f} ms" for kind, a in added.items()) or "n/a"

    def row(kind: str, concurrency: int) -> str:
        service = SERVICE_OF[kind]
        g, s = results[(kind, concurrency, GATEWAY)], results[(kind, concurrency, service)]
        lg, ls = Latencies.of(g.latencies_ms), Latencies.of(s.latencies_ms)
        per_g = {p: v / len(g.latencies_ms) * 1e6 for p, v in g.cpu_s.items()}
        per_s = {p: v / len(s.latencies_ms) * 1e6 for p, v in s.cpu_s.items()}
        rounds = ", ".join(f"{x:,.0f}" for x in sorted(g.rates))
        return (
            f"| {kind} | {concurrency} | **{g.rate:,.0f}** ({rounds}) | {s.rate:,.0f} | "
            f"{g.rate / s.rate:.2f} | {lg.p50:.2f} / {lg.p99:.2f} | {ls.p50:.2f} / {ls.p99:.2f} | "
            f"{lg.p99 - ls.p99:+.2f} | {per_g[GATEWAY]:,.0f} | {per_g[service]:,.0f} | "
            f"{per_s[service]:,.0f} |"
        )

    return "\n".join(
        [
            "# The gateway's share of a request (issue 15)",
            "",
            f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `bench/gateway.py`, on "
            f"**{os.cpu_count()} cores (nproc)** shared by the load generator, the gateway, "
            "the services, PostgreSQL and Kafka (and whatever else ran: see *Load average*). "
            f"Targets: **≥ {TARGET_RATE:,.0f} authorized reads/s** through the gateway: "
            f"{verdict(rate_ok)} (best {best:,.0f}/s); the gateway adds **< "
            f"{TARGET_ADDED_P99_MS:g} ms at p99**: {verdict(added_ok)} ({shown_added}, one "
            "request at a time).",
            "",
            "| Request | Concurrency | Gateway req/s (per round) | service alone req/s | ratio | "
            "gateway p50 / p99, ms | service alone p50 / p99, ms | added p99, ms | gateway CPU "
            "µs/request | service CPU µs/request, via the gateway | service CPU µs/request, "
            "alone |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            *(row(k, c) for k in params.kinds for c in params.concurrency),
            "",
            "- *read*: `GET /api/v1/organizations/{org}`, the service is identity; *deploy*: "
            "`POST /api/v1/environments/{env}/deploy`, the service is the deployer.",
            "- *ratio*: the gateway's requests/s over the service's alone, the same request at "
            "the same concurrency (1 - ratio: the gateway's share of the whole request's cost "
            "on this machine, where the gateway, the service and PostgreSQL share the cores).",
            "- *CPU µs/request*: the process's user + system time (`/proc/<pid>/stat`) over its "
            "chunks, divided by the requests: what the code costs, apart from the waiting. "
            "For deploys it also holds what each request sets off meanwhile: the deployments "
            "the deployer runs, the events the gateway's feed follows.",
            "- Saturated (concurrency > 1), latency is mostly queueing behind the other "
            "requests; the added p99 that the target names is the one-at-a-time row.",
            "",
            "## How it was measured",
            "",
            "- The services started as the platform runs them (`python -m slipway_<name> run`: "
            "API, worker, relay, followers), fresh databases and topics; a user signed up and "
            "created an organization through the gateway (for deploys: a project and "
            f"{max(params.concurrency)} environments, each with one `cronjob` service).",
            "- Through the gateway the request carries the session token: authentication "
            "(EdDSA signature), the policy decision, the path id checks, the forward over a "
            "pooled keep-alive connection. The service alone gets its internal route with the "
            "headers the gateway sends (internal token, actor with the organization, so the "
            "tenant binding runs in both; for deploys the caller's catalog revision too).",
            f"- Closed loop over keep-alive connections (a minimal asyncio HTTP/1.1 client), "
            f"{params.warmup:,} warm-up requests per target and concurrency, then "
            f"{params.rounds} rounds of {params.requests:,} reads and "
            f"{params.deploy_requests:,} deploy requests per target and concurrency, in "
            f"{CHUNKS} chunks per target taken in turn (gateway first, then the service "
            "first, ...). Percentiles (nearest rank) pooled over rounds; requests/s = "
            "requests / time under load. Every answer had to be 200 (read) or 202 (deploy).",
            "",
            *machine_section(
                machine
                | {
                    "Load average (1 min)": f"{loads[0]:.2f} before the run, {loads[1]:.2f} at "
                    "its end (the run itself accounts for up to about 2; more means other work "
                    "shared the machine)"
                }
            ),
        ]
    )


async def run(params: Params | None = None, devstack: Devstack | None = None) -> str:
    params = params or Params()
    devstack = devstack or load_devstack()
    load_before = os.getloadavg()[0]
    print("gateway: starting the services and the gateway...", flush=True)
    async with the_platform(devstack, params) as platform:
        targets = await set_up(platform, devstack, params)
        pids = {}
        for name, service in platform.services.items():
            assert service.process is not None
            pids[name] = service.process.pid
        print(f"gateway: pids {pids}", flush=True)  # e.g. for py-spy during the run
        results = await measure(targets, pids, params)
    facts = await machine(devstack)
    return render(params, results, facts, (load_before, os.getloadavg()[0]))


def parse_args() -> Params:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = Params()
    parser.add_argument("--rounds", type=int, default=defaults.rounds)
    parser.add_argument("--requests", type=int, default=defaults.requests)
    parser.add_argument("--deploy-requests", type=int, default=defaults.deploy_requests)
    parser.add_argument("--warmup", type=int, default=defaults.warmup)
    parser.add_argument(
        "--concurrency", default=",".join(str(c) for c in defaults.concurrency), help="1,8,64"
    )
    parser.add_argument("--no-deploy", action="store_true", help="reads only (identity, gateway)")
    args = parser.parse_args()
    levels = tuple(int(c) for c in args.concurrency.split(","))
    return Params(
        args.rounds, args.requests, args.deploy_requests, levels, args.warmup, not args.no_deploy
    )


if __name__ == "__main__":
    params = parse_args()
    main_alone("gateway", lambda: run(params))
