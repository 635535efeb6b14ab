"""The deployer's control-plane overhead: from a deploy request to the service's DEPLOYED, minus
the runtime's own work, for N environments deployed at once with an already-built image.

    .venv/bin/python bench/deploy_overhead.py [--envs 10,100] [--plane-envs 10,100,1000]

Starts identity, catalog, deployer and gateway as real processes (``python -m slipway_<name>
run``, fresh databases, their own topic prefix; no builder: nothing is built). Signs a user up,
creates an organization and a project, then runs rounds. A round creates N environments through
the gateway, each with one service, waits until the deployer knows every one of them, then sends
the N ``POST /environments/{env}/deploy`` at once and waits for each deployment's final event on
the deployer's deployment topic. Then it reads every ``GET /deployments/{id}`` (the server's
timestamps and the runtime's ``steps.deploy``) and deletes the environments (their containers
stop).

Two kinds of rounds:

- **container**: a ``container`` service on the devstack's base image (busybox ``httpd``): the
  local runtime makes a buildah working container (``buildah from --pull``, ``inspect``,
  ``mount``), starts ``buildah run`` and waits for the port. Its apply time is ``steps.deploy``.
- **control plane only**: a ``cronjob`` service on the same image. Deploying it goes through the
  same queue, claim, snapshot, plan, stages, service runs, state machine and events, but the
  runtime has nothing to start (``steps.deploy`` is ~0): the control plane alone, cheap enough for
  1,000 environments on this machine.

overhead = (finished_at - created_at) - steps.deploy; queue pickup = started_at - created_at;
also the overhead less the wait for a runtime start slot (steps.wait), shown apart.
A deploy request the gateway answers 504 is sent again a second later (as a client would) and
counted. While a batch deploys, the deployer is watched from outside: its main thread's system
call and scheduler statistics (``/proc``), ``GET /healthz`` latency, its database connections
(``pg_stat_activity``), the CPU of every process involved. A container round larger than
``--max-containers`` is reported as not run, with the memory it would take.
Benchmarks report, they do not assert: the targets get a verdict, never an exception. Every
process, container, database and topic the run made is removed at the end, also on failure,
Ctrl-C or SIGTERM (the service logs are kept, and named, when something failed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import re
import signal
import statistics
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
from aiokafka import ConsumerRecord
from support import (
    CpuSnapshot,
    Devstack,
    Latencies,
    ProcStat,
    TopicTail,
    bench_platform,
    cmdline_has,
    cores_used,
    devstack_home,
    load_devstack,
    machine,
    machine_section,
    main_alone,
    proc_stats,
    topic_partitions,
    verdict,
)

from slipway_contracts import Envelope
from slipway_contracts.events.deployer import DEPLOYMENT_TOPIC
from slipway_deployer.adapters.runtime._health import tcp_ok
from slipway_deployer.adapters.runtime._procfs import kill_rooted
from slipway_deployer.config import DeployerSettings
from slipway_libs.settings import KafkaConnection, read_env_file
from slipway_libs.testing.platform import Platform, free_port
from slipway_libs.testing.public_api import User, create_org, sign_up

HERE = Path(__file__).resolve().parent

TARGET_PICKUP_P95_S = 0.5
TARGET_OVERHEAD_P95_S = 2.0
CONTAINER, PLANE = "container", "control plane only"
SERVICES = ["identity", "catalog", "deployer", "gateway"]
FINAL = {
    "deployer.DeploymentSucceeded": "SUCCESS",
    "deployer.DeploymentFailed": "ERROR",
    "deployer.DeploymentCanceled": "CANCELED",
}
SHARED_ENV = (
    "REGISTRY",
    "BUILDAH_ROOT",
    "BUILDAH_RUNROOT",
    "BUILDAH_STORAGE_DRIVER",
    "DEPLOYER_REGISTRY_USERNAME",  # the registry refuses anonymous pulls
    "DEPLOYER_REGISTRY_PASSWORD",
)
CONTAINER_PREFIX = "slipway-rt-"  # the local runtime's working containers: slipway-rt-<service>-
DIRECT_SAMPLES = 5
RETRY_S = 1.0  # before sending again a deploy request the gateway answered 504


@dataclass(frozen=True)
class Params:
    container_envs: tuple[int, ...] = (10, 100, 1000)
    plane_envs: tuple[int, ...] = (10, 100, 1000)
    # a container round above this is not run: each running container is a `buildah run`
    # process (see the report's memory figure); 1,000 of them do not fit this machine
    max_containers: int = 200
    setup_concurrency: int = 8  # creating environments, reading results, deleting
    round_timeout_s: float = 900.0  # deploying one round, then deleting it


def sizes(text: str) -> tuple[int, ...]:
    """``"10,100"`` → (10, 100); ``""`` → () (argparse type)."""
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of counts: {text!r}") from None
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError("counts start at 1")
    return values


# --- the devstack's image settings ------------------------------------------------------------


@dataclass(frozen=True)
class Stack:
    env: dict[str, str]  # the devstack's SLIPWAY_* settings

    @classmethod
    def of(cls, devstack: Devstack) -> Stack:
        env = {
            **(read_env_file(devstack.env_file) if devstack.env_file else {}),
            **{k: v for k, v in os.environ.items() if k.startswith("SLIPWAY_")},
        }
        if "SLIPWAY_BASE_IMAGE" not in env or "SLIPWAY_REGISTRY" not in env:
            raise RuntimeError("the devstack has no registry/base image: run `make infra-up`")
        return cls(env)

    @property
    def base_image(self) -> str:
        return self.env["SLIPWAY_BASE_IMAGE"]

    def image_source(self) -> dict[str, str]:
        registry, _, rest = self.base_image.partition("/")
        name, _, tag = rest.partition(":")
        return {"registry": registry, "name": name, "tag": tag or "latest"}

    def platform_env(self) -> dict[str, str]:
        """What ``platform_factory`` passes the services, plus a session that outlives the run."""
        shared = {
            f"SLIPWAY_{k}": self.env[f"SLIPWAY_{k}"]
            for k in SHARED_ENV
            if f"SLIPWAY_{k}" in self.env
        }
        return shared | {"SLIPWAY_IDENTITY_ACCESS_TOKEN_TTL_S": "86400"}

    def buildah(self, *args: str) -> list[str]:
        """The local runtime's buildah command line (``runtime._buildah.Buildah.command``)."""
        cache = os.environ.get("SLIPWAY_CACHE_DIR", os.path.expanduser("~/.cache/slipway"))
        return [
            "buildah",
            "--root",
            self.env.get("SLIPWAY_BUILDAH_ROOT", f"{cache}/buildah/root"),
            "--runroot",
            self.env.get("SLIPWAY_BUILDAH_RUNROOT", f"{cache}/buildah/runroot"),
            "--storage-driver",
            self.env.get("SLIPWAY_BUILDAH_STORAGE_DRIVER", "vfs"),
            *args,
        ]


def service_body(kind: str, stack: Stack) -> dict[str, Any]:
    if kind == CONTAINER:
        return {
            "name": "box",
            "kind": "container",
            "image": stack.image_source(),
            "command": [
                "sh",
                "-c",
                "mkdir -p /www && echo up > /www/index.html && exec httpd -f -p $PORT -h /www",
            ],
            "ports": [{"port": 8080}],
        }
    return {
        "name": "tick",
        "kind": "cronjob",
        "image": stack.image_source(),
        "command": ["true"],
        "schedule": "0 3 * * *",
    }


# --- the platform ---------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def deploy_platform(
    devstack: Devstack, stack: Stack, services: set[str]
) -> AsyncIterator[Platform]:
    """identity, catalog, deployer, gateway, ready. At the end: stopped; then whatever runs
    or stays in buildah's storage for one of ``services`` (the service ids the run created) is
    killed and removed, the topics deleted, the deployer's state dir and the logs removed (the
    logs kept, and named, when something failed)."""
    async with bench_platform(
        devstack,
        SERVICES,
        stack.platform_env(),
        after_stop=lambda: remove_leftovers(stack, services),
    ) as platform:
        yield platform


def our_processes(services: Iterable[str]) -> list[int]:
    """Processes whose command line names a working container of one of ``services`` (the
    ``buildah run`` of a container and whatever it started keep it in their argv)."""
    markers = [f"{CONTAINER_PREFIX}{sid}".encode() for sid in services]
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                cmdline = Path(entry.path, "cmdline").read_bytes()
                if any(m in cmdline for m in markers):
                    found.append(int(entry.name))
    return found


async def remove_leftovers(stack: Stack, services: set[str]) -> None:
    """After the deployer stopped: kill what still runs in a container of ours (their process
    groups: ``buildah run`` starts in a session of its own and outlives the deployer) and remove
    those working containers from buildah's storage. Nothing is left after a clean run."""
    for pid in our_processes(services):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(os.getpgid(pid), signal.SIGKILL)
    if not services:
        return
    listed = await asyncio.create_subprocess_exec(
        *stack.buildah("containers", "--all", "--format", "{{.ContainerName}}"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=_buildah_env(),
    )
    out, _ = await listed.communicate()
    names = [n for n in out.decode().split() if _service_of(n) in services]
    if names:
        print(f"deploy_overhead: removing {len(names)} working containers left", file=sys.stderr)
        removed = await asyncio.create_subprocess_exec(
            *stack.buildah("rm", *names),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            env=_buildah_env(),
        )
        await removed.wait()


def _service_of(container: str) -> str:
    """``slipway-rt-<service uuid>-<8 hex>`` → the service uuid."""
    return container.removeprefix(CONTAINER_PREFIX)[:36]


def _buildah_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL")}
    env.setdefault("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
    return env


# --- the public API -------------------------------------------------------------------------


class Api:
    """The gateway's public API as one signed-in user; any unexpected answer raises."""

    def __init__(self, base_url: str) -> None:
        self.client = httpx.AsyncClient(
            base_url=f"{base_url}/api/v1",
            timeout=120,
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=64),
        )
        self.auth: dict[str, str] = {}

    async def close(self) -> None:
        await self.client.aclose()

    async def call(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        response = await self.client.request(method, path, json=body, headers=self.auth)
        if response.status_code != expect:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:300]}")
        return response.json() if response.content else None


@dataclass
class Tenant:
    owner: User
    org_id: str
    project_id: str
    cluster_id: str


async def set_up_tenant(api: Api) -> Tenant:
    """A user, an organization (its local cluster known to the catalog) and a project."""
    owner = await sign_up(api.client, "Bench")
    api.auth = owner.auth
    org_id = await create_org(api.client, owner, "Bench")

    async def cluster() -> str | None:
        items = (await api.call("GET", f"/organizations/{org_id}/clusters"))["items"]
        return items[0]["id"] if items else None

    cluster_id = await eventually(cluster, within_s=30, what="the organization's cluster")
    project = await api.call(
        "POST", f"/organizations/{org_id}/projects", {"name": "Fleet"}, expect=201
    )
    return Tenant(owner, org_id, project["id"], cluster_id)


async def eventually(
    check: Callable[[], Awaitable[Any]], within_s: float, what: str, every_s: float = 0.1
) -> Any:
    """The first truthy value of ``check``; TimeoutError after ``within_s``."""
    deadline = time.monotonic() + within_s
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not there within {within_s:g}s")
        await asyncio.sleep(every_s)


async def bounded(limit: int, jobs: Iterable[Awaitable[Any]]) -> list[Any]:
    """Run the awaitables, at most ``limit`` at a time; their results in order."""
    gate = asyncio.Semaphore(limit)

    async def one(job: Awaitable[Any]) -> Any:
        async with gate:
            return await job

    return await asyncio.gather(*(one(job) for job in jobs))


# --- the deployer's deployment topic --------------------------------------------------------


@dataclass(frozen=True)
class Final:
    status: str
    seen: float  # wall clock: when this process received the event
    published: float  # wall clock: the Kafka record's timestamp (the outbox relay's send)


class Outcomes(TopicTail):
    """Reads the deployer's deployment topic from its end, from before anything is deployed,
    and keeps when each deployment's final event (succeeded, failed, canceled) arrived."""

    def __init__(self, kafka: KafkaConnection, prefix: str) -> None:
        super().__init__(kafka, topic_partitions(prefix, DEPLOYMENT_TOPIC))
        self.finals: dict[str, Final] = {}

    async def took(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        seen = time.time()
        for record in records:
            envelope = Envelope.from_json(record.value)
            status = FINAL.get(envelope.type)
            if status is not None:
                deployment = str(envelope.data["deployment_id"])
                self.finals.setdefault(deployment, Final(status, seen, record.timestamp / 1000))

    async def wait(self, ids: Sequence[str], timeout_s: float) -> list[str]:
        """Until every one of ``ids`` ended; those that did not within ``timeout_s``."""
        assert self.task is not None
        deadline = time.monotonic() + timeout_s
        while missing := [i for i in ids if i not in self.finals]:
            self.check()
            if time.monotonic() > deadline:
                return missing
            await asyncio.sleep(0.05)
        return []


# --- CPU and memory, from /proc -------------------------------------------------------------

TOOLS = "deployer's buildah tools + containers"
CLIENT = "benchmark client"
OTHER = "everything else (other processes, kernel)"


def cpu_snapshot(services: dict[str, int], devstack_home: bytes) -> CpuSnapshot:
    """CPU ticks so far, grouped: each service process (the deployer's own Python apart from
    what its children used: the buildah tools it ran and reaped, plus every process under it
    still running — its containers), PostgreSQL, the devstack's Kafka, this process."""
    stats = proc_stats()
    names = {pid: name for name, pid in services.items()}
    deployer = services.get("deployer")
    postmaster = _postmaster(stats, devstack_home)
    bench = os.getpid()
    parts: dict[tuple[int, str], tuple[str, int, int]] = {}
    for pid, p in stats.items():
        if pid == deployer:
            parts[(pid, "own")] = ("deployer", p.start, p.own)
            parts[(pid, "children")] = (TOOLS, p.start, p.children)
        elif pid in names:
            parts[(pid, "all")] = (names[pid], p.start, p.total)
        elif deployer is not None and _descends(pid, deployer, stats):
            parts[(pid, "all")] = (TOOLS, p.start, p.total)
        elif pid == bench:
            parts[(pid, "own")] = (CLIENT, p.start, p.own)
        elif postmaster is not None and postmaster in (pid, p.ppid):
            parts[(pid, "all")] = ("PostgreSQL", p.start, p.total)
        elif p.comm == "java" and cmdline_has(pid, devstack_home):
            parts[(pid, "all")] = ("Kafka", p.start, p.total)
    return CpuSnapshot.now(parts)


def _postmaster(stats: dict[int, ProcStat], home: bytes) -> int | None:
    """The devstack's PostgreSQL server (not the ones the tests' deployers run)."""
    for pid, p in stats.items():
        parent = stats.get(p.ppid)
        first = p.comm == "postgres" and (parent is None or parent.comm != "postgres")
        if first and cmdline_has(pid, home):
            return pid
    return None


def _descends(pid: int, ancestor: int, stats: dict[int, ProcStat]) -> bool:
    for _ in range(64):
        parent = stats.get(pid)
        if parent is None or parent.ppid <= 1:
            return False
        if parent.ppid == ancestor:
            return True
        pid = parent.ppid
    return False


@dataclass(frozen=True)
class Memory:
    processes: int
    pss_mib: float  # proportional set size: shared pages split between their users


def container_memory(deployer: int) -> Memory:
    """Every process under the deployer (its ``buildah run`` processes and their children)."""
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                raw = Path(entry.path, "stat").read_text()
                parents[int(entry.name)] = int(raw[raw.rfind(")") + 2 :].split()[1])
    under, pss_kib = 0, 0
    for pid in parents:
        walk, hops = pid, 0
        while walk in parents and parents[walk] > 1 and parents[walk] != deployer and hops < 64:
            walk, hops = parents[walk], hops + 1
        if parents.get(walk) != deployer:
            continue
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss_kib += int(line.split()[1])
                    under += 1
                    break
    return Memory(under, pss_kib / 1024)


# --- the deployer's event loop ----------------------------------------------------------------

SYSCALLS = {  # x86_64: the ones an asyncio service's main thread is usually found in
    0: "read",
    1: "write",
    3: "close",
    4: "stat",
    5: "fstat",
    7: "poll",
    35: "nanosleep",
    56: "clone",
    58: "vfork",
    59: "execve",
    61: "wait4",
    62: "kill",
    74: "fsync",
    75: "fdatasync",
    82: "rename",
    87: "unlink",
    202: "futex",
    217: "getdents64",
    232: "epoll_wait",
    257: "openat",
    262: "newfstatat",
    281: "epoll_pwait",
    435: "clone3",
    436: "close_range",
}


@dataclass
class LoopReport:
    states: dict[str, int]  # what the main thread was found doing → samples
    healthz_s: list[float]  # GET /healthz straight to the deployer, one every 0.1 s
    on_cpu_s: float = math.nan  # the main thread, over the batch (schedstat)
    runnable_s: float = math.nan  # ... waiting for a CPU while runnable
    window_s: float = math.nan
    connections: list[tuple[int, int, int]] = field(default_factory=list)  # active, in tx, idle
    inbound: list[int] = field(default_factory=list)  # TCP connections open to its API

    def share(self, state: str) -> float:
        return self.states.get(state, 0) / max(1, sum(self.states.values()))

    def busy(self) -> list[int]:
        return [active + in_tx for active, in_tx, _ in self.connections]


class LoopProbe:
    """Watches the deployer's event loop while a batch deploys, from outside: its main
    thread's current system call (``/proc/<pid>/syscall``, 100 times a second: ``epoll_wait``
    is the loop waiting for work, ``running`` is Python running, anything else is the loop
    blocked in that call) and how long a trivial ``GET /healthz`` takes (10 times a second:
    the loop's stalls, as any request meets them)."""

    def __init__(self, pid: int, url: str, admin_url: str, database: str) -> None:
        self._port = f":{urlsplit(url).port:04X}"
        self._path = Path(f"/proc/{pid}/syscall")
        self._schedstat = Path(f"/proc/{pid}/task/{pid}/schedstat")
        self._url = url
        self._admin_url, self._database = admin_url, database
        self._stop = threading.Event()
        self.report = LoopReport({}, [])
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._tasks: list[asyncio.Task[None]] = []
        self._began: tuple[float, list[int]] = (0.0, [])

    async def start(self) -> None:
        self._began = (time.monotonic(), self._sched())
        self._thread.start()
        self._tasks = [
            asyncio.create_task(self._healthz()),
            asyncio.create_task(self._connections()),
        ]

    async def stop(self) -> LoopReport:
        self._stop.set()
        ended, sched = time.monotonic(), self._sched()
        if sched and self._began[1]:
            self.report.on_cpu_s = (sched[0] - self._began[1][0]) / 1e9
            self.report.runnable_s = (sched[1] - self._began[1][1]) / 1e9
        self.report.window_s = ended - self._began[0]
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.to_thread(self._thread.join, 5)
        return self.report

    def _inbound(self) -> int:
        """Established TCP connections whose server side is the deployer's port (its API's
        callers: the gateway, and this probe's one)."""
        count = 0
        with contextlib.suppress(OSError), open("/proc/net/tcp") as table:
            next(table, None)
            for line in table:
                fields = line.split()
                if fields[3] == "01" and fields[1].endswith(self._port):
                    count += 1
        return count

    def _sched(self) -> list[int]:
        """ns on a CPU, ns waiting for one while runnable, time slices (``schedstat``)."""
        try:
            return [int(v) for v in self._schedstat.read_text().split()]
        except (OSError, ValueError):
            return []

    async def _connections(self) -> None:
        """The deployer's connections to its database, by state, 10 times a second."""
        conn = await asyncpg.connect(self._admin_url)
        try:
            while True:
                rows = await conn.fetch(
                    "SELECT state, count(*) AS n FROM pg_stat_activity WHERE datname = $1"
                    " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
                    " GROUP BY state",
                    self._database,
                )
                by = {r["state"]: r["n"] for r in rows}
                in_tx = by.get("idle in transaction", 0) + by.get(
                    "idle in transaction (aborted)", 0
                )
                self.report.connections.append((by.get("active", 0), in_tx, by.get("idle", 0)))
                await asyncio.sleep(0.1)
        finally:
            await conn.close()

    def _sample(self) -> None:
        states = self.report.states
        ticks = 0
        while not self._stop.wait(0.01):
            ticks += 1
            if ticks % 10 == 0:
                self.report.inbound.append(self._inbound())
            try:
                first = self._path.read_text().split(maxsplit=1)[0]
            except (OSError, IndexError):
                continue
            if first.lstrip("-").isdigit():
                number = int(first)
                first = SYSCALLS.get(number, f"syscall {number}") if number >= 0 else "in kernel"
            states[first] = states.get(first, 0) + 1

    async def _healthz(self) -> None:
        async with httpx.AsyncClient(timeout=60) as client:
            while True:
                began = time.perf_counter()
                with contextlib.suppress(httpx.HTTPError):
                    await client.get(f"{self._url}/healthz")
                    self.report.healthz_s.append(time.perf_counter() - began)
                await asyncio.sleep(0.1)


# --- one round --------------------------------------------------------------------------------


@dataclass
class Sample:
    env_id: str
    service_id: str
    request_id: str = ""
    sent: float = math.nan  # wall clock
    answered: float = math.nan  # wall clock: the 202
    timeouts: int = 0  # 504 UPSTREAM_TIMEOUT / 503 GATEWAY_BUSY answers before the 202 (retried)
    detail: dict[str, Any] = field(default_factory=dict)
    final: Final | None = None

    def at(self, key: str, *, stage: bool = False, service: bool = False) -> float:
        source: dict[str, Any] = self.detail
        if (stage or service) and source.get("stages"):
            source = source["stages"][0]
        if service and source.get("services"):
            source = source["services"][0]
        value = source.get(key)
        return datetime.fromisoformat(value).timestamp() if value else math.nan

    @property
    def status(self) -> str:
        return str(self.detail.get("status", "NOT_ANSWERED"))

    @property
    def apply_s(self) -> float:
        return self._steps("deploy")

    @property
    def slot_wait_s(self) -> float:
        """Waiting for a runtime start slot (``steps.wait``): the machine starting others."""
        return self._steps("wait")

    def _steps(self, step: str) -> float:
        runs = [s for stage in self.detail.get("stages", []) for s in stage["services"]]
        return sum(float(r["steps"].get(step, 0.0)) for r in runs) if runs else math.nan

    def parts(self) -> dict[str, float]:
        created, started, finished = (
            self.at("created_at"),
            self.at("started_at"),
            self.at("finished_at"),
        )
        stage, service_done = (
            self.at("started_at", stage=True),
            self.at("finished_at", service=True),
        )
        seen = self.final.seen if self.final else math.nan
        published = self.final.published if self.final else math.nan
        return {
            "total": finished - created,
            "pickup": started - created,
            "apply": self.apply_s,
            "overhead": finished - created - self.apply_s,
            "plane": finished - created - self.apply_s - self.slot_wait_s,
            "slot_wait": self.slot_wait_s,
            "api": self.answered - self.sent,
            "client": seen - self.sent,
            "claimed_to_stage": stage - started,
            "stage_to_apply": service_done - self.apply_s - self.slot_wait_s - stage,
            "apply_to_finished": finished - service_done,
            "finished_to_published": published - finished,
            "published_to_seen": seen - published,
        }


@dataclass
class Round:
    kind: str
    n: int
    samples: list[Sample]
    setup_s: float
    batch_s: float  # first deploy sent → last final event received
    cores: dict[str, float]  # during the batch
    idle_cores: dict[str, float]  # afterwards, everything deployed and left running
    memory: Memory | None
    teardown_s: float
    unfinished: list[str]
    leftovers: int  # processes of this round's containers still alive after the deletions
    loop: LoopReport
    ghosts: dict[str, int]  # deployments made for requests the client got an error for → status
    errors: list[str] = field(default_factory=list)

    def ok(self) -> list[Sample]:
        return [s for s in self.samples if s.status == "SUCCESS"]

    def stats(self, part: str) -> Latencies:
        values = [s.parts()[part] for s in self.ok()]
        return Latencies.of([v for v in values if not math.isnan(v)])


@dataclass
class Env:
    tenant: Tenant
    api: Api
    platform: Platform
    stack: Stack
    outcomes: Outcomes
    devstack: Devstack
    services: set[str]  # every service id created, for the final clean-up
    params: Params


async def create_environments(env: Env, kind: str, n: int, label: str) -> list[Sample]:
    body = service_body(kind, env.stack)

    async def one(index: int) -> Sample:
        created = await env.api.call(
            "POST",
            f"/projects/{env.tenant.project_id}/environments",
            {"name": f"{label}-{index}", "mode": "staging", "cluster_id": env.tenant.cluster_id},
            expect=201,
        )
        service = await env.api.call(
            "POST", f"/environments/{created['id']}/services", body, expect=201
        )
        env.services.add(service["id"])
        return Sample(created["id"], service["id"])

    samples = await bounded(env.params.setup_concurrency, (one(i) for i in range(n)))

    async def known(sample: Sample) -> None:
        async def listed() -> bool:
            response = await env.api.client.get(
                f"/environments/{sample.env_id}/status", headers=env.api.auth
            )
            return response.status_code == 200 and len(response.json()["services"]) == 1

        await eventually(listed, within_s=120, what=f"environment {sample.env_id} in the deployer")

    await bounded(env.params.setup_concurrency, (known(s) for s in samples))
    return samples


async def deploy_all(env: Env, samples: list[Sample]) -> list[str]:
    """Every deploy request at once; one answered 504 UPSTREAM_TIMEOUT (the gateway gave up
    on the deployer) or 503 GATEWAY_BUSY (not sent: no free connection) is sent again after
    ``RETRY_S``, as a client would, until accepted or the round's time is up. The errors of those
    never accepted."""
    errors: list[str] = []

    async def one(sample: Sample) -> None:
        sample.sent = time.time()
        deadline = time.monotonic() + env.params.round_timeout_s
        while True:
            try:
                response = await env.api.client.post(
                    f"/environments/{sample.env_id}/deploy", headers=env.api.auth
                )
            except httpx.HTTPError as exc:
                errors.append(f"deploy {sample.env_id}: {exc!r}")
                return
            # 504: the gateway gave up waiting; 503 GATEWAY_BUSY: it had no free connection to
            # the deployer and did not send the request (Retry-After): both are sent again
            if response.status_code not in (503, 504) or time.monotonic() > deadline:
                break
            sample.timeouts += 1
            await asyncio.sleep(RETRY_S)
        sample.answered = time.time()
        if response.status_code != 202:
            errors.append(f"deploy {sample.env_id}: {response.status_code} {response.text[:200]}")
            return
        sample.request_id = response.json()["request_id"]

    await asyncio.gather(*(one(s) for s in samples))
    return errors


async def delete_all(env: Env, samples: list[Sample], timeout_s: float) -> list[str]:
    """Delete every environment (their containers stop and are removed); problems, if any."""
    problems: list[str] = []

    async def one(sample: Sample) -> str | None:
        response = await env.api.client.post(
            f"/environments/{sample.env_id}/delete", headers=env.api.auth
        )
        if response.status_code != 202:
            problems.append(f"delete {sample.env_id}: {response.status_code} {response.text[:200]}")
            return None
        return str(response.json()["request_id"])

    asked = await bounded(env.params.setup_concurrency * 4, (one(s) for s in samples))
    ids = [i for i in asked if i is not None]
    missing = await env.outcomes.wait(ids, timeout_s)
    problems += [f"deletion {i} did not finish within {timeout_s:g}s" for i in missing]
    failed = [
        i for i in ids if i in env.outcomes.finals and env.outcomes.finals[i].status != "SUCCESS"
    ]
    problems += [f"deletion {i} ended {env.outcomes.finals[i].status}" for i in failed]
    return problems


async def refused_yet_queued(env: Env, refused: list[Sample]) -> dict[str, int]:
    """The deploy requests the client got an error for (a 504 from the gateway, say): did the
    deployer queue them anyway (a deployment besides the one the client was given)? Those
    found, by the status they ended in, once every one of them ended."""
    found: dict[str, str] = {}

    async def history(sample: Sample) -> None:
        items = (await env.api.call("GET", f"/environments/{sample.env_id}/deployments"))["items"]
        for item in items:
            if item["action"] == "DEPLOY" and item["id"] != sample.request_id:
                found[item["id"]] = item["status"]

    await bounded(env.params.setup_concurrency, (history(s) for s in refused))
    await env.outcomes.wait(list(found), env.params.round_timeout_s)
    ended: dict[str, int] = {}
    for deployment in found:
        final = env.outcomes.finals.get(deployment)
        status = final.status if final is not None else "not finished"
        ended[status] = ended.get(status, 0) + 1
    return ended


def snapshot(env: Env) -> CpuSnapshot:
    pids = {}
    for name, service in env.platform.services.items():
        if service.process is not None:
            pids[name] = service.process.pid
    return cpu_snapshot(pids, devstack_home(env.devstack))


async def run_round(env: Env, kind: str, n: int, label: str) -> Round:
    params = env.params
    print(f"deploy_overhead: {kind}, {n} environments: creating them...", flush=True)
    began = time.monotonic()
    samples = await create_environments(env, kind, n, label)
    setup_s = time.monotonic() - began
    await asyncio.sleep(2)  # let the creations' events and relays settle
    print(f"deploy_overhead: {kind}, {n} environments: deploying them at once...", flush=True)
    deployer = env.platform.services["deployer"]
    assert deployer.process is not None
    probe = LoopProbe(
        deployer.process.pid,
        deployer.url,
        env.devstack.admin_url,
        urlsplit(env.platform.env["SLIPWAY_DEPLOYER_DATABASE_URL"]).path.lstrip("/"),
    )
    await probe.start()
    before = await asyncio.to_thread(snapshot, env)
    try:
        errors = await deploy_all(env, samples)
        asked = [s.request_id for s in samples if s.request_id]
        unfinished = await env.outcomes.wait(asked, params.round_timeout_s)
        after = await asyncio.to_thread(snapshot, env)
    finally:
        loop = await probe.stop()
    for sample in samples:
        sample.final = env.outcomes.finals.get(sample.request_id)
    first_sent = min(s.sent for s in samples)
    seen = [s.final.seen for s in samples if s.final is not None]
    batch_s = (max(seen) if seen else time.time()) - first_sent
    # afterwards, with everything deployed still running: what the deployer costs at rest
    await asyncio.sleep(2)
    rest_before = await asyncio.to_thread(snapshot, env)
    await asyncio.sleep(5)
    rest_after = await asyncio.to_thread(snapshot, env)
    memory = (
        await asyncio.to_thread(container_memory, deployer.process.pid)
        if kind == CONTAINER
        else None
    )

    async def read(sample: Sample) -> None:
        if sample.request_id:
            sample.detail = await env.api.call("GET", f"/deployments/{sample.request_id}")

    await bounded(params.setup_concurrency, (read(s) for s in samples))
    ghosts = await refused_yet_queued(env, [s for s in samples if s.timeouts or not s.request_id])
    errors += [
        f"{s.request_id}: {s.status} {s.detail.get('reason')}: {s.detail.get('message')}"
        for s in samples
        if s.request_id and s.status != "SUCCESS"
    ]
    print(f"deploy_overhead: {kind}, {n} environments: deleting them...", flush=True)
    began = time.monotonic()
    errors += await delete_all(env, samples, params.round_timeout_s)
    teardown_s = time.monotonic() - began
    leftovers = len(our_processes(s.service_id for s in samples))
    result = Round(
        kind,
        n,
        samples,
        setup_s,
        batch_s,
        cores_used(before, after, rest=OTHER),
        cores_used(rest_before, rest_after, rest=OTHER),
        memory,
        teardown_s,
        unfinished,
        leftovers,
        loop,
        ghosts,
        errors,
    )
    overhead, pickup = result.stats("overhead"), result.stats("pickup")
    print(
        f"deploy_overhead: {kind}, {n}: {len(result.ok())}/{n} succeeded in {batch_s:.1f} s; "
        f"pickup p95 {pickup.p95:.3f} s, overhead p95 {overhead.p95:.3f} s",
        flush=True,
    )
    return result


# --- the runtime's preparation, alone ----------------------------------------------------------


async def direct_buildah(stack: Stack, samples: int) -> dict[str, list[float]]:
    """What the local runtime runs before it starts a container (``LocalRuntime._prepare``):
    ``buildah from --pull``, ``inspect``, ``mount``, then the ``rm`` a deletion runs; one
    container at a time, on the same storage, while nothing is being deployed."""
    times: dict[str, list[float]] = {
        "from --pull": [],
        "inspect": [],
        "mount": [],
        "run → port open": [],
        "rm": [],
    }
    env = _buildah_env()

    async def step(name: str, *args: str) -> str:
        began = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            *stack.buildah(*args),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        out, err = await proc.communicate()
        times[name].append(time.perf_counter() - began)
        if proc.returncode != 0:
            raise RuntimeError(f"buildah {args[0]}: {err.decode(errors='replace')[-300:]}")
        return out.decode()

    for _ in range(samples):
        name = f"bench-rt-{uuid.uuid4().hex[:10]}"
        await step(
            "from --pull",
            "from",
            "--pull",
            "--tls-verify=false",
            "--quiet",
            "--name",
            name,
            stack.base_image,
        )
        try:
            await step("inspect", "inspect", "--type", "container", name)
            rootfs = Path((await step("mount", "mount", name)).strip())
            times["run → port open"].append(await serve_once(stack, name, rootfs))
        finally:
            await step("rm", "rm", name)
    return times


async def serve_once(stack: Stack, container: str, rootfs: Path) -> float:
    """``buildah run`` of the benchmark's httpd in ``container`` (chroot isolation, host
    network, its own session, as the runtime starts a service) until its port accepts a
    connection; then it is stopped as the runtime stops one."""
    port = free_port()
    command = f"mkdir -p /www && echo up > /www/index.html && exec httpd -f -p {port} -h /www"
    argv = stack.buildah("run", "--isolation", "chroot", container, "--", "sh", "-c", command)
    began = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        env=_buildah_env(),
        start_new_session=True,
    )
    try:
        while not await tcp_ok("127.0.0.1", port, 1.0):
            if proc.returncode is not None or time.perf_counter() - began > 60:
                raise RuntimeError(f"buildah run exited ({proc.returncode}) or never listened")
            await asyncio.sleep(0.01)
        return time.perf_counter() - began
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), 10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        kill_rooted(rootfs)  # what left the group, as the runtime does
        await proc.wait()


# --- the run ---------------------------------------------------------------------------------


@dataclass
class Results:
    rounds: list[Round]
    skipped: list[tuple[str, int, str]]  # kind, n, why
    direct: dict[str, list[float]]
    started: datetime
    settings: dict[str, str]


async def measure(devstack: Devstack, params: Params) -> Results:
    stack = Stack.of(devstack)
    started = datetime.now(UTC)
    services: set[str] = set()
    skipped = [
        (
            CONTAINER,
            n,
            f"more than {params.max_containers} containers (`--deploy-max-containers`): each is "
            "a `buildah run` process plus its app, all running at once",
        )
        for n in params.container_envs
        if n > params.max_containers
    ]
    plan = [(CONTAINER, n) for n in params.container_envs if n <= params.max_containers]
    plan += [(PLANE, n) for n in params.plane_envs]
    print("deploy_overhead: the runtime's buildah steps alone...", flush=True)
    direct = await direct_buildah(stack, DIRECT_SAMPLES) if plan else {}
    print("deploy_overhead: starting identity, catalog, deployer, gateway...", flush=True)
    rounds: list[Round] = []
    async with deploy_platform(devstack, stack, services) as platform:
        api = Api(platform.url("gateway"))
        outcomes = Outcomes(devstack.kafka, platform.prefix)
        try:
            await outcomes.start()
            tenant = await set_up_tenant(api)
            env = Env(tenant, api, platform, stack, outcomes, devstack, services, params)
            settings = deployer_knobs(platform.env)
            if plan:
                print("deploy_overhead: warm-up (one environment each way, not counted)...")
                for index, kind in enumerate(dict.fromkeys(k for k, _ in plan)):
                    await run_round(env, kind, 1, f"warm{index}")
            for index, (kind, n) in enumerate(plan):
                rounds.append(await run_round(env, kind, n, f"r{index}"))
        finally:
            await outcomes.stop()
            await api.close()
    left = our_processes(services)
    if left:
        print(f"deploy_overhead: {len(left)} container processes still alive", file=sys.stderr)
    return Results(rounds, skipped, direct, started, settings)


KNOBS = (
    "max_parallel_deployments",
    "parallel_per_stage",
    "poll_s",
    "monitor_s",
    "db_pool_max",
    "relay_poll_interval_s",
)


def deployer_knobs(env: dict[str, str]) -> dict[str, str]:
    """The deployer settings that shape its throughput: the defaults of ``DeployerSettings``
    unless the services' environment sets them (no secret among them)."""
    fields = DeployerSettings.model_fields
    return {
        name: env.get(f"SLIPWAY_DEPLOYER_{name.upper()}", str(fields[name].default))
        for name in KNOBS
    }


async def run(devstack: Devstack | None = None, params: Params | None = None) -> str:
    """Run the benchmark; the markdown report."""
    devstack = devstack or load_devstack()
    params = params or Params()
    load_before = os.getloadavg()[0]
    code = await code_version()  # what the services are about to run
    results = await measure(devstack, params)
    facts = await machine(devstack)
    facts["buildah"] = await tool_version(["buildah", "--version"])
    facts["Code"] = code
    facts["Load average (1 min)"] = (
        f"{load_before:.2f} before the run, {os.getloadavg()[0]:.2f} at its end"
    )
    return render(params, results, facts)


async def code_version() -> str:
    """The commit the services ran from, and whether the code they run differed from it."""
    root = str(HERE.parent)
    head = (await tool_version(["git", "-C", root, "rev-parse", "--short=10", "HEAD"])).strip()
    code = ["services", "libs", "contracts", "resolver"]
    changed = await tool_version(["git", "-C", root, "status", "--porcelain", "--", *code])
    dirty = "" if changed in ("", "unknown") else " + uncommitted changes in the services' code"
    return f"commit {head}{dirty}"


async def tool_version(argv: list[str]) -> str:
    with contextlib.suppress(OSError):
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
        )
        out, _ = await proc.communicate()
        if out.strip():
            return out.decode().strip()
    return "unknown"


# --- the report ------------------------------------------------------------------------------


def _s(value: float, digits: int = 3) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def _trio(stats: Latencies) -> str:
    if not stats.samples:
        return "-"
    return f"{_s(stats.p50)} / {_s(stats.p95)} / {_s(stats.p99)}"


def _label(r: Round) -> str:
    return f"{r.kind}, {r.n:,}"


def render(params: Params, results: Results, machine: dict[str, str]) -> str:
    rounds = results.rounds
    return "\n".join(
        [
            "# Deployer control-plane overhead",
            "",
            f"Run {results.started:%Y-%m-%d %H:%M} UTC by `bench/run.py` "
            "(`bench/deploy_overhead.py`): N environments, one service each, deployed at once "
            "with an already-built image, through the gateway, against real identity, catalog, "
            "deployer and gateway processes. Seconds throughout; percentiles are nearest-rank "
            "over the deployments that succeeded (with N = 10, p95 = p99 = the slowest one).",
            "",
            *_noise(rounds),
            "## Results",
            "",
            "*Overhead* = (`finished_at` - `created_at`) - `steps.deploy` (the runtime's apply: "
            "container start + health check; ~0 for the control-plane-only rounds). "
            "*Queue pickup* = `started_at` - `created_at`. "
            "*Client sees it* = request sent → its `DeploymentSucceeded` received from Kafka.",
            "",
            "| Round (kind, N) | Succeeded | Queue pickup p50 / p95 / p99 | "
            "Overhead p50 / p95 / p99 | Total p50 / p95 / p99 | Runtime apply p50 / p95 / p99 | "
            "Client sees it p50 / p95 / p99 | Whole batch |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
            *(
                f"| {_label(r)} | {len(r.ok())}/{r.n} | {_trio(r.stats('pickup'))} | "
                f"{_trio(r.stats('overhead'))} | {_trio(r.stats('total'))} | "
                f"{_trio(r.stats('apply'))} | {_trio(r.stats('client'))} | {r.batch_s:.1f} |"
                for r in rounds
            ),
            *(
                f"| {kind}, {n:,} | not run | {why}{_memory_estimate(rounds, n, machine)} |||||| "
                for kind, n, why in results.skipped
            ),
            "",
            "## Targets",
            "",
            "| Round | Queue pickup p95 | < 0.5 s | Overhead p95 | < 2 s | "
            "Overhead less the start-slot wait, p95 | < 2 s |",
            "|---|---:|---|---:|---|---:|---|",
            *(
                f"| {_label(r)} | {_s(r.stats('pickup').p95)} | "
                f"{verdict(r.stats('pickup').p95 < TARGET_PICKUP_P95_S)} | "
                f"{_s(r.stats('overhead').p95)} | "
                f"{verdict(r.stats('overhead').p95 < TARGET_OVERHEAD_P95_S)} | "
                f"{_s(r.stats('plane').p95)} | "
                f"{verdict(r.stats('plane').p95 < TARGET_OVERHEAD_P95_S)} |"
                for r in rounds
                if r.ok()
            ),
            "",
            "The start-slot wait is time a deployment's container waited for one of the runtime's "
            "4 start slots while the machine started the others (`steps.wait`). It is container "
            "start time under load rather than control-plane work: with no limit, the same "
            "starts would share the 2 cores and each apply would take as much longer. Both "
            "figures are given; the target is judged on the first.",
            "",
            *_dominates(rounds),
            *_timings(rounds),
            *_breakdown(rounds),
            *_resources(rounds),
            *_event_loop(rounds),
            *_direct(results.direct, rounds),
            *_problems(rounds),
            *_how_measured(params, results),
            *machine_section(machine),
        ]
    )


def _memory_estimate(rounds: Sequence[Round], n: int, machine: dict[str, str]) -> str:
    """What ``n`` running containers would take, from the largest container round's memory."""
    measured = [r for r in rounds if r.memory is not None and r.memory.processes]
    if not measured:
        return ""
    largest = max(measured, key=lambda r: r.n)
    assert largest.memory is not None
    per = largest.memory.pss_mib / largest.n
    return (
        f": {per:.0f} MiB each at N = {largest.n} makes {per * n / 1024:.0f} GiB for {n:,}, "
        f"on a machine of {machine.get('Memory', 'unknown memory')}"
    )


def _noise(rounds: Sequence[Round]) -> list[str]:
    noisy = [
        f"{_label(r)}: {r.cores.get(OTHER, 0):.2f} cores"
        for r in rounds
        if r.cores.get(OTHER, 0) > 0.2 * (os.cpu_count() or 1)
    ]
    if not noisy:
        return []
    return [
        "> **Noisy run**: other work used more than 20 % of the cores during "
        f"{'; '.join(noisy)} (see *CPU* below). The figures are pessimistic.",
        "",
    ]


def _dominates(rounds: Sequence[Round]) -> list[str]:
    """What the figures below say dominates, round by round (the tables have the detail)."""
    lines = []
    for r in rounds:
        if not r.ok():
            continue
        total, loop = r.stats("total"), r.loop
        window = loop.window_s if loop.window_s > 0 else math.nan
        waiting, on_cpu = loop.runnable_s / window, loop.on_cpu_s / window
        parts = {title: r.stats(key).p50 for key, title in PARTS if key != "apply"}
        biggest = max(parts, key=lambda k: -1 if math.isnan(parts[k]) else parts[k])
        text = f"- **{_label(r)}**: "
        if r.kind == CONTAINER:
            text += (
                f"the runtime's apply is {r.stats('apply').p50 / total.p50:.0%} of the median "
                f"deployment ({_s(r.stats('apply').p50)} of {_s(total.p50)} s). "
            )
        text += (
            f"Largest overhead part at p50: {biggest.split(' (')[0]} ({_s(parts[biggest])} s). "
            f"The deployer's event loop was on a CPU {on_cpu:.0%} of the batch, runnable but "
            f"waiting for one {waiting:.0%}, blocked in `vfork` {loop.share('vfork'):.0%} of "
            f"the samples, idle (`epoll_wait`) {loop.share('epoll_wait'):.0%}"
        )
        if r.kind == CONTAINER:
            text += f"; its buildah tools and containers used {r.cores.get(TOOLS, 0):.2f} cores"
        text += f". {r.n / r.batch_s:.1f} deployments/s over the batch."
        if any(x.timeouts for x in r.samples):
            text += (
                f" The gateway refused {sum(1 for x in r.samples if x.timeouts)} of the "
                f"{r.n} first requests (504, see *Problems*) with at most "
                f"{max(loop.inbound, default=0)} connections open to the deployer and "
                f"{r.cores.get('gateway', 0):.2f} cores busy in the gateway."
            )
        lines.append(text)
    if not lines:
        return []
    return ["## What dominates", "", *lines, ""]


def _timings(rounds: Sequence[Round]) -> list[str]:
    if not rounds:
        return []
    return [
        "## Round timings",
        "",
        "| Round | Create N environments + wait until the deployer knows them | Deploy the batch "
        "(first request → last final event) | Deployments/s | Delete the batch |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {_label(r)} | {r.setup_s:.1f} | {r.batch_s:.1f} | {r.n / r.batch_s:.1f} | "
            f"{r.teardown_s:.1f} |"
            for r in rounds
        ),
        "",
    ]


PARTS = (
    ("api", "request sent → 202 (gateway + deployer API, request transaction)"),
    ("pickup", "created → picked up (`started_at`: the worker's claim)"),
    ("claimed_to_stage", "picked up → stage started (the plan: snapshot, stages, started)"),
    ("stage_to_apply", "stage started → apply begins, less the slot wait (variables, DEPLOYING)"),
    ("slot_wait", "waiting for a start slot (`steps.wait`: 4 starts at once, the machine busy)"),
    ("apply", "apply (the runtime: `steps.deploy`, not overhead)"),
    ("apply_to_finished", "apply done → `finished_at` (DONE, stage DONE, succeeded)"),
    ("finished_to_published", "`finished_at` → event on Kafka (outbox relay)"),
    ("published_to_seen", "on Kafka → received by this process"),
)


def _breakdown(rounds: Sequence[Round]) -> list[str]:
    if not rounds:
        return []
    return [
        "## Where the time goes",
        "",
        "Per deployment, p50 / p95 of each part, in seconds (*stage started* is the stage's "
        "`started_at`; *apply begins* = the service run's `finished_at` - `steps.deploy`).",
        "",
        "| Part | " + " | ".join(_label(r) for r in rounds) + " |",
        "|---|" + "---:|" * len(rounds),
        *(
            f"| {title} | "
            + " | ".join(
                f"{_s(r.stats(key).p50)} / {_s(r.stats(key).p95)}" if r.ok() else "-"
                for r in rounds
            )
            + " |"
            for key, title in PARTS
        ),
        "",
    ]


def _resources(rounds: Sequence[Round]) -> list[str]:
    if not rounds:
        return []
    groups = [
        "deployer",
        TOOLS,
        "gateway",
        "catalog",
        "identity",
        "PostgreSQL",
        "Kafka",
        CLIENT,
        OTHER,
    ]
    lines = [
        "## CPU and memory",
        "",
        "Cores used while each batch was deployed (CPU seconds per wall-clock second, from "
        "`/proc`; *deployer* is its own Python process, its buildah tools and containers "
        f"apart), on {os.cpu_count()} cores.",
        "",
        "| Process | " + " | ".join(_label(r) for r in rounds) + " |",
        "|---|" + "---:|" * len(rounds),
        *(
            f"| {g} | " + " | ".join(f"{r.cores.get(g, 0):.2f}" for r in rounds) + " |"
            for g in groups
        ),
        "| **all busy** | " + " | ".join(f"{sum(r.cores.values()):.2f}" for r in rounds) + " |",
        "| deployer CPU-s per deployment (own) | "
        + " | ".join(f"{r.cores.get('deployer', 0) * r.batch_s / r.n:.3f}" for r in rounds)
        + " |",
        "| deployer at rest afterwards, cores (N services running, nothing deploying) | "
        + " | ".join(f"{r.idle_cores.get('deployer', 0):.3f}" for r in rounds)
        + " |",
        "| PostgreSQL at rest afterwards, cores | "
        + " | ".join(f"{r.idle_cores.get('PostgreSQL', 0):.3f}" for r in rounds)
        + " |",
        "",
    ]
    with_memory = [r for r in rounds if r.memory is not None and r.memory.processes]
    if with_memory:
        lines += [
            "Memory of the running containers (every process under the deployer, proportional "
            "set size): "
            + "; ".join(
                f"{_label(r)}: {r.memory.pss_mib:,.0f} MiB in {r.memory.processes} processes, "
                f"{r.memory.pss_mib / r.n:.1f} MiB per container"
                for r in with_memory
                if r.memory is not None
            )
            + ".",
            "",
        ]
    return lines


POOL_BUSY = int(DeployerSettings.model_fields["db_pool_max"].default)


def _event_loop(rounds: Sequence[Round]) -> list[str]:
    if not rounds:
        return []
    totals: dict[str, int] = {}
    for r in rounds:
        for state, count in r.loop.states.items():
            totals[state] = totals.get(state, 0) + count
    shown = sorted(totals, key=lambda k: -totals[k])[:8]
    by_round = [(r, Latencies.of(r.loop.healthz_s)) for r in rounds]
    return [
        "## The deployer's event loop during the batch",
        "",
        "What the deployer's main thread (its asyncio event loop) was found doing, sampled "
        "from `/proc/<pid>/syscall` 100 times a second while the batch deployed (share of "
        "the samples): `epoll_wait` = the loop waiting for work, `running` = Python code "
        "running, anything else = the whole loop blocked in that system call (no request, "
        "no transaction, no claim moves meanwhile). Then `GET /healthz` straight to the "
        "deployer, one every 0.1 s: a trivial route, so its latency is the loop's stalls.",
        "",
        "| Main thread in | " + " | ".join(_label(r) for r in rounds) + " |",
        "|---|" + "---:|" * len(rounds),
        *(
            f"| `{state}` | " + " | ".join(f"{r.loop.share(state):.0%}" for r in rounds) + " |"
            for state in shown
        ),
        "| samples | " + " | ".join(f"{sum(r.loop.states.values()):,}" for r in rounds) + " |",
        "| main thread on a CPU / runnable but waiting for one, share of the batch (schedstat) | "
        + " | ".join(
            f"{r.loop.on_cpu_s / r.loop.window_s:.0%} / {r.loop.runnable_s / r.loop.window_s:.0%}"
            for r in rounds
        )
        + " |",
        "| `GET /healthz` p50 / p99 / max, s | "
        + " | ".join(f"{_s(h.p50)} / {_s(h.p99)} / {_s(h.max)}" for _, h in by_round)
        + " |",
        "| `GET /healthz` slower than 0.5 s | "
        + " | ".join(
            f"{sum(1 for v in r.loop.healthz_s if v > 0.5)} of {len(r.loop.healthz_s)}"
            for r in rounds
        )
        + " |",
        "| TCP connections open to the deployer's API (the gateway's, + 1 probe): max | "
        + " | ".join(f"{max(r.loop.inbound, default=0)}" for r in rounds)
        + " |",
        "| database connections busy (in a query or a transaction): mean / max | "
        + " | ".join(
            f"{statistics.fmean(r.loop.busy()):.1f} / {max(r.loop.busy())}"
            if r.loop.connections
            else "-"
            for r in rounds
        )
        + " |",
        "| ... of which idle in a transaction (waiting for the deployer's Python), mean | "
        + " | ".join(
            f"{statistics.fmean(c[1] for c in r.loop.connections):.1f}"
            if r.loop.connections
            else "-"
            for r in rounds
        )
        + " |",
        f"| samples with {POOL_BUSY}+ connections busy (the pool's usable ones all taken) | "
        + " | ".join(
            f"{sum(1 for b in r.loop.busy() if b >= POOL_BUSY) / len(r.loop.busy()):.0%}"
            if r.loop.connections
            else "-"
            for r in rounds
        )
        + " |",
        "",
        "The deployer's database connections were read from `pg_stat_activity` 10 times a "
        f"second: its pool (`db_pool_max` = {POOL_BUSY} connections) and the few it opens "
        "beside it (the outbox relay's; the worker's leader lock and LISTEN), mostly idle. "
        f"{POOL_BUSY} busy at once means the pool had (about) nothing left to lend.",
        "",
    ]


def _direct(direct: dict[str, list[float]], rounds: Sequence[Round]) -> list[str]:
    if not direct or not any(direct.values()):
        return []
    total = sum(statistics.median(v) for k, v in direct.items() if v and k != "rm")
    containers = [r for r in rounds if r.kind == CONTAINER and r.ok()]
    compare = (
        "; the apply p50 was "
        + ", ".join(f"{_s(r.stats('apply').p50)} s at N = {r.n}" for r in containers)
        if containers
        else ""
    )
    return [
        "## The runtime's buildah steps, alone",
        "",
        f"One working container at a time, {DIRECT_SAMPLES} times, before the rounds, with the "
        "runtime's flags and storage, the same busybox `httpd` (seconds):",
        "",
        "| `buildah` step | Median | Max |",
        "|---|---:|---:|",
        *(f"| `{k}` | {_s(statistics.median(v))} | {_s(max(v))} |" for k, v in direct.items()),
        "",
        f"`from` + `inspect` + `mount` + `run` until the port answers = {total:.3f} s: one "
        f"container's apply on an otherwise idle runtime (the runtime then probes the port "
        f"every 0.2 s){compare}.",
        "",
    ]


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _problems(rounds: Sequence[Round]) -> list[str]:
    lines = []
    for r in rounds:
        if r.errors or r.unfinished or r.leftovers or any(x.timeouts for x in r.samples):
            lines.append(f"- {_label(r)}:")
            kinds: dict[str, int] = {}
            for error in r.errors:
                kind = _UUID.sub("<id>", error)
                kinds[kind] = kinds.get(kind, 0) + 1
            lines += [f"  - {count} x `{kind}`" for kind, count in kinds.items()]
            if r.unfinished:
                lines.append(f"  - {len(r.unfinished)} deployments did not finish in time")
            if r.leftovers:
                lines.append(f"  - {r.leftovers} container processes alive after the deletions")
            timeouts = sum(s.timeouts for s in r.samples)
            if timeouts:
                retried = [s.timeouts for s in r.samples if s.timeouts]
                ran = ", ".join(f"{count} {status}" for status, count in r.ghosts.items())
                lines.append(
                    f"  - the gateway answered {timeouts} deploy requests "
                    "`504 UPSTREAM_TIMEOUT` or `503 GATEWAY_BUSY` "
                    f"({len(retried)} environments, up to {max(retried)} times for one); each "
                    f"was sent again {RETRY_S:g} s later until accepted (*request sent → 202* "
                    "counts from the first send). "
                    + (
                        f"{sum(r.ghosts.values())} of them had been queued by the deployer all "
                        f"the same, and ran ({ran})"
                        if r.ghosts
                        else "None of the refused ones had reached the deployer: no deployment "
                        "besides the accepted one in any of those environments' histories"
                    )
                )
    if not lines:
        return []
    return ["## Problems seen", "", *lines, ""]


def _how_measured(params: Params, results: Results) -> list[str]:
    rounds = results.rounds
    knobs = ", ".join(f"`{k}` = {v}" for k, v in results.settings.items())
    return [
        "## How it was measured",
        "",
        "- One platform for the whole run: identity, catalog, deployer and gateway "
        "(`python -m slipway_<name> run`, fresh databases migrated by their own `migrate`, a "
        "topic prefix of their own), the devstack's registry and buildah storage. No builder: "
        "the image is the devstack's base image, already in the registry. Deployer settings "
        f"as shipped: {knobs} (`db_pool_max`: its asyncpg pool, shared by the API, the "
        "executions and the consumers). The deployer's code is the working tree's at the "
        "start of the run (*Code* below).",
        "- A user, an organization and a project; then, per round, N environments (mode "
        "staging, the organization's local cluster), each with one service: a `container` "
        "(busybox `httpd` on `$PORT`, port 8080, TCP health check) or a `cronjob` (same image, "
        "nothing to run at deploy time). Created through the gateway "
        f"{params.setup_concurrency} at a time; then each environment's status was read until "
        "the deployer listed its service (it learns the catalog from events). A warm-up round "
        "of one environment per kind ran first and is not counted.",
        "- The N `POST /api/v1/environments/{env}/deploy` were sent at once (one asyncio task "
        "each, no connection limit) after a 2 s pause; one the gateway answered "
        f"`504 UPSTREAM_TIMEOUT` or `503 GATEWAY_BUSY` was sent again {RETRY_S:g} s later, as a "
        "client would, until "
        "accepted (see *Problems*). A consumer on the deployer's "
        "`deployer.deployment.v1` topic, positioned at its end before the round, timed each "
        "deployment's final event; then `GET /api/v1/deployments/{id}` gave `created_at` "
        "(PostgreSQL's `now()` of the request transaction), `started_at`, `finished_at`, the "
        "stage's `started_at` and the service run's `finished_at` and `steps.deploy`. All "
        "clocks are this host's.",
        "- Afterwards every environment was deleted (`POST .../delete`, "
        f"{params.setup_concurrency * 4} at a time) and its deletion awaited; then no process "
        "of those containers may remain. *At rest* figures: 5 s with the batch deployed and "
        "running, before the deletions.",
        "- The order: "
        + ", then ".join(_label(r) for r in rounds)
        + ". Later rounds run on a deployer whose tables hold the earlier rounds' rows "
        "(a few thousand: no measurable effect expected).",
        "- The 2 cores are shared by everything: Kafka, PostgreSQL, the four services, the "
        "containers, this client, and whatever else runs on the machine (*everything else* in "
        "the CPU table). Tails move between runs; compare runs on the same machine.",
        "",
    ]


# --- entry points -----------------------------------------------------------------------------


def parse_args() -> Params:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = Params()
    parser.add_argument("--envs", type=sizes, default=defaults.container_envs)
    parser.add_argument("--plane-envs", type=sizes, default=defaults.plane_envs)
    parser.add_argument("--max-containers", type=int, default=defaults.max_containers)
    args = parser.parse_args()
    return Params(
        container_envs=args.envs, plane_envs=args.plane_envs, max_containers=args.max_containers
    )


if __name__ == "__main__":
    params = parse_args()
    main_alone("deploy_overhead", lambda: run(params=params))
