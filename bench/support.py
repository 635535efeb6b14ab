"""Plumbing shared by the benchmarks: devstack settings, throwaway databases and topics, quiet
logging, worker processes and their mailbox, percentiles, machine facts.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import math
import multiprocessing
import os
import platform
import queue
import shutil
import signal
import sys
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
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from slipway_contracts import TopicSpec
from slipway_contracts.topics import TOPICS_BY_NAME
from slipway_libs.bus import delete_topics, ensure_topics
from slipway_libs.kafka_access import ACCESS, admin_connection
from slipway_libs.migrations import apply_migrations, service_migrations
from slipway_libs.settings import KafkaConnection, devstack_env_file, read_env_file
from slipway_libs.testing.platform import Platform, revoke_acls, start_platform

SPAWN: SpawnContext = multiprocessing.get_context("spawn")


# --- devstack -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Devstack:
    kafka: KafkaConnection  # the admin principal's (a super user)
    admin_url: str
    env_file: Path | None
    # service -> its Kafka password: the services run as their own principals
    kafka_passwords: dict[str, str] = field(default_factory=dict)

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
    passwords = {
        name: env[f"SLIPWAY_{name.upper()}_KAFKA_PASSWORD"]
        for name in ACCESS
        if f"SLIPWAY_{name.upper()}_KAFKA_PASSWORD" in env
    }
    return Devstack(admin_connection(env), env["SLIPWAY_PG_ADMIN_URL"], path, passwords)


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
    names = {label: f"bench_{run}_{label}" for label in labels}
    try:
        for name in names.values():
            await _admin(devstack, f'CREATE DATABASE "{name}"')
        dsns = {label: devstack.database_url(name) for label, name in names.items()}
        for dsn in dsns.values():
            await _migrate(dsn)
        yield dsns
    finally:
        for name in names.values():
            await _cleanup(
                f"database {name}",
                _admin(devstack, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'),
            )


@contextlib.asynccontextmanager
async def service_databases(devstack: Devstack, *labels: str) -> AsyncIterator[dict[str, str]]:
    """Empty databases ``bench_<run>_<label>`` for services (as ``database_factory`` makes
    them: no PUBLIC connect; each service migrates its own); dropped at the end, each even when
    another could not be."""
    run = uuid.uuid4().hex[:10]
    names = {label: f"bench_{run}_{label}" for label in labels}
    created = []
    try:
        for name in names.values():
            await _admin(devstack, f'CREATE DATABASE "{name}"')
            created.append(name)
            await _admin(devstack, f'REVOKE CONNECT ON DATABASE "{name}" FROM PUBLIC')
        yield {label: devstack.database_url(name) for label, name in names.items()}
    finally:
        for name in created:
            await _cleanup(
                f"database {name}",
                _admin(devstack, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'),
            )


@contextlib.asynccontextmanager
async def bench_platform(
    devstack: Devstack,
    services: Sequence[str],
    env: dict[str, str] | None = None,
    *,
    keep_logs: bool = False,
    after_stop: Callable[[], Awaitable[None]] | None = None,
) -> AsyncIterator[Platform]:
    """``services`` as the platform runs them (``python -m slipway_<name> run``, as their own
    Kafka principals, a topic prefix of their own), each but the gateway on a fresh database;
    ready. At the end, also on failure or cancellation: stopped (with any process the block
    added to ``platform.services``), then ``after_stop`` (said, not raised, when it fails), its
    topics and ACLs deleted, the deployer's state dir removed, its databases dropped; the logs
    removed after a block that went through (kept and named otherwise, or with ``keep_logs``)."""
    async with service_databases(devstack, *(s for s in services if s != "gateway")) as dsns:
        platform: Platform | None = None
        done = False
        try:
            platform = await start_platform(
                devstack.kafka, dsns, list(services), env, devstack.kafka_passwords
            )
            yield platform
            done = True
        finally:
            if platform is not None:
                platform.stop_all()
                if after_stop is not None:
                    await _cleanup("what the run left", after_stop())
                await drop_platform_topics(devstack, platform)
                shutil.rmtree(platform.env["SLIPWAY_DEPLOYER_STATE_DIR"], ignore_errors=True)
                drop_platform_logs(platform, done=done and not keep_logs)


async def drop_platform_topics(devstack: Devstack, platform: Platform) -> None:
    """A stopped platform's Kafka ACLs and topics (said, not raised, when they cannot go)."""

    async def drop() -> None:
        await revoke_acls(platform)
        await delete_prefixed(devstack.kafka, platform.prefix)

    await _cleanup(f"topics {platform.prefix}*", drop())


def drop_platform_logs(platform: Platform, *, done: bool) -> None:
    """The services' logs: removed after a run that went through, kept and named otherwise."""
    logs = next(iter(platform.services.values())).log_path.parent
    if done:
        shutil.rmtree(logs, ignore_errors=True)
    else:
        print(f"benchmark: the service logs are in {logs}", file=sys.stderr)


async def _admin(devstack: Devstack, sql: str) -> None:
    conn = await asyncpg.connect(devstack.admin_url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _cleanup(what: str, action: Awaitable[None]) -> None:
    """Clean up without hiding the error that brought us here; say what is left behind."""
    try:
        await action
    except Exception as exc:
        print(f"benchmark cleanup: could not remove {what}: {exc!r}", file=sys.stderr)


async def _migrate(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await apply_migrations(conn, service_migrations("bench", None))
    finally:
        await conn.close()


@dataclass
class Topics:
    kafka: KafkaConnection
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
async def throwaway_topics(kafka: KafkaConnection) -> AsyncIterator[Topics]:
    topics = Topics(kafka)
    try:
        yield topics
    finally:
        if topics.names:
            await _cleanup(f"topics {topics.names}", delete_topics(kafka, topics.names))


# --- worker processes -----------------------------------------------------------------------


def run_worker(main: Callable[..., Any], mailbox: Any, *args: Any) -> None:
    """Process entry point: quiet logs, run the coroutine, report a crash to the parent."""
    quiet_logging(os.environ.get("SLIPWAY_BENCH_VERBOSE") == "1")
    try:
        asyncio.run(main(mailbox, *args))
    except BaseException:
        mailbox.put(("error", traceback.format_exc()))
        raise


class Flag:
    """A one-way signal between processes: a byte in shared memory, no lock. (A
    ``multiprocessing.Event`` deadlocks ``set()`` when a process waiting on it was killed.)"""

    def __init__(self) -> None:
        self._value: Any = SPAWN.RawValue("b", 0)

    def set(self) -> None:
        self._value.value = 1

    def is_set(self) -> bool:
        return bool(self._value.value)


async def wait_flag(flag: Flag, stop: Flag) -> bool:
    """Wait in a worker until ``flag`` is set (True), or stop / the parent is gone (False)."""
    parent = multiprocessing.parent_process()
    while not flag.is_set():
        if stop.is_set() or (parent is not None and not parent.is_alive()):
            return False
        await asyncio.sleep(0.01)
    return True


class Mailbox:
    """Worker processes and the parent's end of their queue: ``(kind, value)`` messages; a
    worker that crashed (reported or not) raises in the parent at its next look."""

    def __init__(self) -> None:
        self.queue: Any = SPAWN.Queue()
        self._seen: dict[str, Any] = {}
        self._workers: list[tuple[SpawnProcess, Any]] = []

    @contextlib.contextmanager
    def worker(self, main: Callable[..., Any], *args: Any) -> Iterator[SpawnProcess]:
        """Run the coroutine ``main(queue, *args)`` in a spawned process; ``args[-1]`` is its
        stop event: set on exit, then the process is joined (terminated after 15 s)."""
        stop = args[-1]
        proc = SPAWN.Process(
            target=run_worker, args=(main, self.queue, *args), daemon=True, name=main.__name__
        )
        proc.start()
        self._workers.append((proc, stop))
        try:
            yield proc
        finally:
            self._workers.remove((proc, stop))
            stop.set()
            proc.join(15)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)

    async def wait(self, kind: str, timeout_s: float) -> Any:
        deadline = time.monotonic() + timeout_s
        while kind not in self._seen:
            self.check()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {kind!r} from the workers within {timeout_s:.0f}s")
            with contextlib.suppress(queue.Empty):
                self._take(await asyncio.to_thread(self.queue.get, True, min(remaining, 0.5)))
        return self._seen.pop(kind)

    def check(self) -> None:
        """Raise now if a worker reported a crash or is gone before it was told to stop."""
        with contextlib.suppress(queue.Empty):
            while True:
                self._take(self.queue.get_nowait())
        for proc, stop in self._workers:
            if proc.exitcode is not None and not stop.is_set():
                raise RuntimeError(f"worker {proc.name} died (exit code {proc.exitcode})")

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


def machine_section(facts: dict[str, str]) -> list[str]:
    """A report's ``## Machine`` section: the ``machine_facts`` (and a benchmark's own) as a
    table."""
    return [
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in facts.items()),
        "",
    ]


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


async def paced(
    ticks: int, tick_s: float, per_tick: int, send: Callable[[int], Awaitable[None]]
) -> Pacing:
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


def topic_partitions(prefix: str, *topics: str) -> list[TopicPartition]:
    """Every partition of a platform's ``topics`` (the services create them from these specs)."""
    return [
        TopicPartition(prefix + name, p)
        for name in topics
        for p in range(TOPICS_BY_NAME[name].partitions)
    ]


class TopicTail:
    """Reads topics from their current end in a task of its own, started before the run sends
    anything, so that it sees every event the run causes as it arrives: a subclass takes each
    batch in ``took``. ``held`` partitions are positioned at their end too but only read once
    resumed (``consumer.resume``)."""

    poll_ms = 500

    def __init__(
        self,
        kafka: KafkaConnection,
        partitions: Sequence[TopicPartition],
        held: Sequence[TopicPartition] = (),
    ) -> None:
        self.consumer = AIOKafkaConsumer(**kafka.options(), group_id=None, enable_auto_commit=False)
        self.partitions = [*partitions]
        self.held = [*held]
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.consumer.start()
        assigned = [*self.partitions, *self.held]
        self.consumer.assign(assigned)
        await self.consumer.seek_to_end(*assigned)
        for tp in assigned:  # resolve the end offsets now, not at the run's first event
            await self.consumer.position(tp)
        if self.held:
            self.consumer.pause(*self.held)
        self.task = asyncio.create_task(self._read())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        await self.consumer.stop()

    def check(self) -> None:
        """Raise what stopped the reader, if something did."""
        if self.task is not None and self.task.done():
            self.task.result()

    async def took(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        raise NotImplementedError

    async def _read(self) -> None:
        while True:
            batches = await self.consumer.getmany(timeout_ms=self.poll_ms)
            if batches:
                await self.took([record for records in batches.values() for record in records])


async def record_timestamps(kafka: KafkaConnection, topic: str, partitions: int) -> dict[str, int]:
    """Every record of ``topic`` so far: envelope id → its Kafka timestamp (ms, the producer's
    clock at ``send``); the first copy wins when the relay published an event twice."""
    consumer = AIOKafkaConsumer(
        **kafka.options(),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        assigned = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(assigned)
        ends = await consumer.end_offsets(assigned)
        stamps: dict[str, int] = {}
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            for records in (await consumer.getmany(timeout_ms=500, max_records=5_000)).values():
                for record in records:
                    stamps.setdefault(json.loads(record.value)["id"], record.timestamp)
        return stamps
    finally:
        await consumer.stop()


Call = tuple[float, float, int]  # (wall-clock start, seconds, items)


def record_calls(
    owner: type, name: str, items: Callable[[tuple[Any, ...], Any], int]
) -> list[Call]:
    """Instrument the async method ``owner.name`` in this (worker) process: every call is
    appended to the returned list. Measures the real code, changes nothing in what it does."""
    calls: list[Call] = []
    original = getattr(owner, name)

    @functools.wraps(original)
    async def timed(*args: Any, **kwargs: Any) -> Any:
        began, clock = time.time(), time.perf_counter()
        result = await original(*args, **kwargs)
        calls.append((began, time.perf_counter() - clock, items(args, result)))
        return result

    setattr(owner, name, timed)
    return calls


@dataclass(frozen=True)
class Batches:
    """What a batch loop did inside a time window."""

    count: int
    items: int
    seconds: float  # inside the calls
    window_s: float

    @classmethod
    def within(cls, calls: Sequence[Call], start: float, end: float) -> Batches:
        inside = [c for c in calls if start <= c[0] <= end and c[2] > 0]
        return cls(len(inside), sum(c[2] for c in inside), sum(c[1] for c in inside), end - start)

    def describe(self) -> str:
        if not self.count:
            return "no batches"
        return (
            f"{self.count:,} batches, {self.items / self.count:,.0f} events each, "
            f"{self.seconds / self.count * 1000:,.1f} ms each "
            f"({self.seconds / self.items * 1e6:,.0f} µs/event), "
            f"busy {self.seconds / self.window_s:.0%} of the time"
        )

    def describe_calls(self) -> str:
        if not self.count:
            return "no calls"
        return (
            f"{self.count:,} calls, {self.seconds / self.count * 1000:,.1f} ms each, "
            f"busy {self.seconds / self.window_s:.0%} of the time"
        )


# --- other work on the machine --------------------------------------------------------------


@dataclass
class OtherWork:
    """CPU used during a benchmark by processes that are neither the benchmark's own nor the
    devstack's (PostgreSQL, its Kafka), e.g. tests or another benchmark: what the figures
    had to share the cores with. Known when the ``other_work()`` block has ended."""

    cpu_s: float = math.nan
    wall_s: float = math.nan

    @property
    def share(self) -> float:
        """Of all the machine's cores over the block."""
        return self.cpu_s / (self.wall_s * (os.cpu_count() or 1))

    def describe(self) -> str:
        """A report's line: what the benchmark's figures shared the cores with."""
        return (
            f"{self.share:.0%} of all cores ({self.cpu_s:.0f} CPU-s in {self.wall_s:.0f} s) used "
            "by processes other than the benchmark's and the devstack's"
        )


@contextlib.asynccontextmanager
async def other_work(devstack: Devstack) -> AsyncIterator[OtherWork]:
    """Sample every process's CPU time once a second from a worker process (so the scan
    disturbs neither this process's event loop nor its GIL) while the block runs."""
    result, mailbox, stop = OtherWork(), Mailbox(), Flag()
    with mailbox.worker(_sample_other_work, os.getpid(), devstack_home(devstack), stop):
        await mailbox.wait("sampling", 30)
        yield result
        stop.set()
        result.cpu_s, result.wall_s = await mailbox.wait("other_work", 30)


async def _sample_other_work(mailbox: Any, bench_pid: int, home: bytes, stop: Flag) -> None:
    started, last = time.monotonic(), _cpu_ticks(bench_pid, home)
    mailbox.put(("sampling", None))
    used = 0
    while not stop.is_set():
        await asyncio.sleep(1)
        now = _cpu_ticks(bench_pid, home)
        used += sum(_used_since(last.get(pid), born, ticks) for pid, (born, ticks) in now.items())
        last = now
    mailbox.put(("other_work", (used / _TICK, time.monotonic() - started)))


def _used_since(before: tuple[int, int] | None, born: int, ticks: int) -> int:
    """Ticks since the last look; a process born since then (or a recycled pid) from zero."""
    return ticks - before[1] if before is not None and before[0] == born else ticks


def _cpu_ticks(bench_pid: int, home: bytes) -> dict[int, tuple[int, int]]:
    """pid → (start time, user + system ticks) of every process but the benchmark's own
    (``bench_pid`` and its children) and the devstack's PostgreSQL and Kafka."""
    return {
        pid: (p.start, p.own)
        for pid, p in proc_stats().items()
        if bench_pid not in (pid, p.ppid)
        and p.comm != "postgres"
        and not (p.comm == "java" and cmdline_has(pid, home))  # the devstack's Kafka
    }


# --- CPU used by groups of processes, from /proc ------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcStat:
    """One process's line of ``/proc/<pid>/stat``."""

    comm: str
    ppid: int
    start: int  # ticks after boot: with the pid, tells a recycled pid apart
    own: int  # user + system ticks of the process itself
    children: int  # user + system ticks of the children it reaped

    @property
    def total(self) -> int:
        return self.own + self.children


def proc_stats() -> dict[int, ProcStat]:
    """Every process's CPU ticks so far (one that ends while it is read is left out)."""
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            raw = Path(entry.path, "stat").read_text()
            f = raw[raw.rfind(")") + 2 :].split()
            found[int(entry.name)] = ProcStat(
                comm=raw[raw.find("(") + 1 : raw.rfind(")")],
                ppid=int(f[1]),
                start=int(f[19]),
                own=int(f[11]) + int(f[12]),
                children=int(f[13]) + int(f[14]),
            )
    return found


def cmdline_has(pid: int, needle: bytes) -> bool:
    """Whether the process's command line contains ``needle`` (False once it is gone)."""
    with contextlib.suppress(OSError):
        return needle in Path(f"/proc/{pid}/cmdline").read_bytes()
    return False


def devstack_home(devstack: Devstack) -> bytes:
    """The devstack's directory, as its PostgreSQL and Kafka command lines name it."""
    return str(devstack.env_file.parent).encode() if devstack.env_file else b"/nonexistent"


def busy_ticks() -> int:
    """Ticks all cores were busy since boot (/proc/stat: all but idle and iowait)."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = values[:8]
    return user + nice + system + irq + softirq + steal


@dataclass(frozen=True)
class CpuSnapshot:
    at: float  # monotonic
    busy: int  # busy_ticks()
    parts: dict[tuple[int, str], tuple[str, int, int]]  # (pid, part) → (group, start, ticks)

    @classmethod
    def now(cls, parts: dict[tuple[int, str], tuple[str, int, int]]) -> CpuSnapshot:
        return cls(time.monotonic(), busy_ticks(), parts)


def cpu_snapshot(workers: dict[str, int], devstack: Devstack) -> CpuSnapshot:
    """CPU ticks so far of each worker (by pid) and of the devstack's PostgreSQL (every
    ``postgres`` process, other users' backends included) and Kafka."""
    home = devstack_home(devstack)
    by_pid = {pid: name for name, pid in workers.items()}
    parts = {}
    for pid, p in proc_stats().items():
        name = by_pid.get(pid) or ("PostgreSQL" if p.comm == "postgres" else None)
        if name is None and p.comm == "java" and cmdline_has(pid, home):
            name = "Kafka"
        if name is not None:
            # own + reaped children's ticks: a backend that ended moves into the postmaster's
            parts[(pid, "all")] = (name, p.start, p.total)
    return CpuSnapshot.now(parts)


def cores_used(
    before: CpuSnapshot, after: CpuSnapshot, *, rest: str | None = None
) -> dict[str, float]:
    """Per group: CPU seconds per wall-clock second between the snapshots (1.0 = one core), and
    with ``rest`` the rest of the machine's busy time under that name. A process that started
    in between counts from zero; one that ended took its ticks to its parent's (the postmaster
    reaps its backends; same group), so only what it had used before is removed."""
    used: dict[str, float] = {}
    for key, (group, born, ticks) in after.parts.items():
        earlier = before.parts.get(key)
        start = earlier[2] if earlier is not None and earlier[1] == born else 0
        used[group] = used.get(group, 0) + ticks - start
    for key, (group, born, ticks) in before.parts.items():
        if after.parts.get(key, ("", -1, 0))[1] != born:
            used[group] = used.get(group, 0) - ticks
    if rest is not None:
        used[rest] = max(0.0, after.busy - before.busy - sum(used.values()))
    wall = max(1e-9, after.at - before.at) * _TICK
    return {group: ticks / wall for group, ticks in used.items()}


# --- report helpers ---------------------------------------------------------------------------


async def postgres_version(devstack: Devstack) -> str:
    """The devstack's PostgreSQL, e.g. ``PostgreSQL 15.18 (Debian 15.18-0+deb12u1)``."""
    conn = await asyncpg.connect(devstack.admin_url)
    try:
        version: str = await conn.fetchval("SELECT version()")
        return version.split(" on ")[0]
    finally:
        await conn.close()


async def machine(devstack: Devstack) -> dict[str, str]:
    """``machine_facts`` with the devstack's PostgreSQL version asked now."""
    return machine_facts(devstack, await postgres_version(devstack))


def verdict(ok: bool) -> str:
    """A target's verdict in a report."""
    return "**PASS**" if ok else "**FAIL**"


async def delete_prefixed(kafka: KafkaConnection, prefix: str) -> None:
    """The topics the services created under this run's prefix, dead-letter topics included.
    (Their consumer groups stay: aiokafka's admin client cannot delete groups.)"""
    admin = AIOKafkaAdminClient(**kafka.options(), client_id="bench-cleanup")
    await admin.start()
    try:
        topics = [t for t in await admin.list_topics() if t.startswith((prefix, f"dlq.{prefix}"))]
        if topics:
            await admin.delete_topics(topics)
    finally:
        await admin.close()


# --- running one benchmark alone ----------------------------------------------------------------

RESULTS = Path(__file__).resolve().parent / "results"


def main_alone(name: str, table: Callable[[], Awaitable[str]]) -> None:
    """``python bench/<name>.py``: run one benchmark and write its table to
    ``results/<name>.md``. Ctrl-C and SIGTERM cancel it, so its processes, databases and topics
    are cleaned up."""
    quiet_logging()
    try:
        asyncio.run(_alone(name, table))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted: benchmark resources cleaned up", file=sys.stderr)
        sys.exit(130)


async def _alone(name: str, table: Callable[[], Awaitable[str]]) -> None:
    this = asyncio.current_task()
    assert this is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, this.cancel)
    text = await table()
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.md"
    path.write_text(text)
    print(f"\n{text}\n(written to {path})", flush=True)
