"""Plumbing shared by the benchmarks: devstack settings, throwaway databases and topics, quiet
logging, worker processes and their mailbox, percentiles, machine facts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import multiprocessing
import os
import platform
import queue
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.context import SpawnContext, SpawnProcess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import structlog

from slipway_contracts import TopicSpec
from slipway_libs.bus import delete_topics, ensure_topics
from slipway_libs.migrations import apply_migrations, service_migrations
from slipway_libs.settings import devstack_env_file, read_env_file

SPAWN: SpawnContext = multiprocessing.get_context("spawn")


# --- devstack -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Devstack:
    kafka: str
    admin_url: str
    env_file: Path | None

    def database_url(self, name: str) -> str:
        return urlunsplit(urlsplit(self.admin_url)._replace(path=f"/{name}"))


def load_devstack() -> Devstack:
    path = devstack_env_file()
    env = {
        **read_env_file(path),
        **{k: v for k, v in os.environ.items() if k.startswith("SLIPWAY_")},
    }
    if "SLIPWAY_PG_ADMIN_URL" not in env or "SLIPWAY_KAFKA_BOOTSTRAP_SERVERS" not in env:
        raise SystemExit("the devstack is not running: run `make infra-up` (make bench does it)")
    return Devstack(env["SLIPWAY_KAFKA_BOOTSTRAP_SERVERS"], env["SLIPWAY_PG_ADMIN_URL"], path)


def quiet_logging(verbose: bool = False) -> None:
    """Benchmarks measure, they do not talk: only errors reach the terminal unless verbose."""
    level = logging.INFO if verbose else logging.ERROR
    logging.basicConfig(level=level)
    logging.getLogger().setLevel(level)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(level))


# --- throwaway resources --------------------------------------------------------------------


@contextlib.asynccontextmanager
async def throwaway_databases(devstack: Devstack, *labels: str) -> AsyncIterator[dict[str, str]]:
    """Fresh databases ``bench_<run>_<label>`` with the libs migrations; dropped at the end."""
    run = uuid.uuid4().hex[:10]
    admin = await asyncpg.connect(devstack.admin_url)
    created: list[str] = []
    try:
        dsns = {}
        for label in labels:
            name = f"bench_{run}_{label}"
            await admin.execute(f'CREATE DATABASE "{name}"')
            created.append(name)
            dsns[label] = devstack.database_url(name)
            await _migrate(dsns[label])
        yield dsns
    finally:
        for name in created:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def _migrate(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await apply_migrations(conn, service_migrations("bench", None))
    finally:
        await conn.close()


@dataclass
class Topics:
    kafka: str
    names: list[str] = field(default_factory=list)

    async def create(self, partitions: int, prefix: str) -> str:
        name = f"bench.{prefix}.{uuid.uuid4().hex[:10]}.v1"
        self.names.append(name)
        await ensure_topics(
            self.kafka, [TopicSpec(name=name, description="benchmark", partitions=partitions)]
        )
        return name

    def delete_later(self, name: str) -> None:
        self.names.append(name)


@contextlib.asynccontextmanager
async def throwaway_topics(kafka: str) -> AsyncIterator[Topics]:
    topics = Topics(kafka)
    try:
        yield topics
    finally:
        if topics.names:
            await delete_topics(kafka, topics.names)


# --- worker processes -----------------------------------------------------------------------


@contextlib.contextmanager
def worker(target: Callable[..., None], *args: Any) -> Iterator[SpawnProcess]:
    """Run ``target(*args)`` in a spawned process; on exit ``stop`` (args[-1]) is set, then the
    process is joined, terminated if it does not stop within 15 s."""
    stop = args[-1]
    proc = SPAWN.Process(target=target, args=args, daemon=True)
    proc.start()
    try:
        yield proc
    finally:
        stop.set()
        proc.join(15)
        if proc.is_alive():
            proc.terminate()
            proc.join(5)


def run_worker(main: Callable[..., Any], mailbox: Any, *args: Any) -> None:
    """Process entry point: quiet logs, run the coroutine, report a crash to the parent."""
    quiet_logging(os.environ.get("SLIPWAY_BENCH_VERBOSE") == "1")
    try:
        asyncio.run(main(mailbox, *args))
    except BaseException:
        mailbox.put(("error", traceback.format_exc()))
        raise


async def wait_event(event: Any, stop: Any) -> bool:
    """Wait in a worker until ``event`` is set (True), or stop / the parent is gone (False)."""
    parent = multiprocessing.parent_process()
    while not await asyncio.to_thread(event.wait, 0.5):
        if stop.is_set() or (parent is not None and not parent.is_alive()):
            return False
    return True


class Mailbox:
    """The parent's end of the workers' queue: ``(kind, value)`` messages, errors raise."""

    def __init__(self) -> None:
        self.queue: Any = SPAWN.Queue()
        self._seen: dict[str, Any] = {}

    async def wait(self, kind: str, timeout_s: float) -> Any:
        deadline = time.monotonic() + timeout_s
        while kind not in self._seen:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {kind!r} from the workers within {timeout_s:.0f}s")
            with contextlib.suppress(queue.Empty):
                self._take(await asyncio.to_thread(self.queue.get, True, min(remaining, 0.5)))
        return self._seen.pop(kind)

    def check(self) -> None:
        """Raise now if a worker reported a crash."""
        with contextlib.suppress(queue.Empty):
            while True:
                self._take(self.queue.get_nowait())

    def _take(self, message: tuple[str, Any]) -> None:
        kind, value = message
        if kind == "error":
            raise RuntimeError(f"a benchmark worker crashed:\n{value}")
        self._seen[kind] = value


# --- measuring ------------------------------------------------------------------------------


async def sleep_until(deadline: float) -> None:
    delay = deadline - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending sequence."""
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


@dataclass(frozen=True)
class Latencies:
    samples: int
    p50: float
    p95: float
    p99: float
    max: float

    @classmethod
    def of(cls, values_ms: Sequence[float]) -> Latencies:
        ordered = sorted(values_ms)
        return cls(
            len(ordered),
            percentile(ordered, 50),
            percentile(ordered, 95),
            percentile(ordered, 99),
            ordered[-1] if ordered else math.nan,
        )


def machine_facts(devstack: Devstack, postgres_version: str) -> dict[str, str]:
    import aiokafka

    return {
        "CPU": f"{os.cpu_count()} cores (nproc), {_cpu_model()}",
        "Memory": _memory(),
        "Kafka": f"Apache Kafka {_kafka_version(devstack)} (devstack, 1 broker, KRaft)",
        "PostgreSQL": postgres_version,
        "Python": f"{platform.python_version()}, aiokafka {aiokafka.__version__}, "
        f"asyncpg {asyncpg.__version__}",
        "OS": f"{platform.system()} {platform.release()}",
    }


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or "unknown CPU"


def _memory() -> str:
    with contextlib.suppress(OSError, ValueError, IndexError):
        first = Path("/proc/meminfo").read_text().splitlines()[0]
        return f"{int(first.split()[1]) / 1024 / 1024:.0f} GiB"
    return "unknown"


def _kafka_version(devstack: Devstack) -> str:
    """The running broker's version, from the devstack's Kafka log (4.1.1 is what it installs)."""
    if devstack.env_file is not None:
        log = devstack.env_file.parent / "logs" / "kafka.log"
        with contextlib.suppress(OSError), log.open(errors="replace") as lines:
            for line in lines:
                if "Kafka version:" in line:
                    return line.split("Kafka version:")[1].split()[0]
    return "4.1.1"


@dataclass(frozen=True)
class Pacing:
    """How well a paced writer kept to its schedule."""

    rate: float  # events/s actually written
    late_ticks: int  # ticks that started more than one tick period behind schedule
    worst_lag_ms: float


async def paced(ticks: int, tick_s: float, per_tick: int,
                send: Callable[[int], Awaitable[None]]) -> Pacing:
    """Call ``send(i)`` for i in range(ticks) on a monotonic schedule, one every ``tick_s``; a
    late tick is sent at once (no skipping), so the schedule catches up."""
    start = time.monotonic()
    late, worst = 0, 0.0
    for i in range(ticks):
        due = start + i * tick_s
        await sleep_until(due)
        lag = time.monotonic() - due
        worst = max(worst, lag)
        late += lag > tick_s
        await send(i)
    elapsed = time.monotonic() - start + tick_s  # the last tick owns one period too
    return Pacing(ticks * per_tick / elapsed, late, worst * 1000)
