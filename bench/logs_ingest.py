"""Logs ingest: lines per second the logs service stores, against a plain COPY of the same lines.

The ingest side is the service's real path below Kafka: ``slipway_libs.inbox.InboxConsumer``
with the logs service's own consumer spec (its ``batch(ingest.append)`` handler), fed the Kafka
records the builder and the deployer would publish (``LogLinesAppended`` envelopes, one event per
50 lines, 100 streams), 500 records per ``process`` call as ``bus.subscribe`` hands them over. Each
call is one transaction: the inbox claim, today's partition checked, the streams' cursor counters
moved (row locks), every line in one INSERT … unnest, the batch's search chunks in another,
a NOTIFY per stream.

The baseline writes the very same rows (cursors already known, parts already split, search
chunks already made) into the same tables, with the same indexes (lines: primary key,
organization; search chunks: primary key, stream + trigram GIN, organization), by ``COPY`` a
batch a transaction: what storing them costs with nothing else around it. Each
variant, each round, gets a fresh database with the service's migrations, so both start from
empty indexes.
Both connect as the devstack's admin (a superuser, which row-level security does not apply to:
the service's own role could not COPY into a table under row security at all).

Search: then ``--search-lines`` (1,000,000) lines of 100 streams are COPied into a fresh
database and one stream is searched through the read use case (``reads.read``, ``q`` with
``tail=500``, as the API calls it: the stream's head, the matching cursors, their parts), each
query 20 times: the p95 of them all against the target.

``python bench/logs_ingest.py [--lines 100000] [--rounds 3] [--search-lines 1000000]``;
``make bench`` runs it too.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import asyncpg
from support import (
    Devstack,
    cmdline_has,
    load_devstack,
    machine,
    machine_section,
    main_alone,
    proc_stats,
    service_databases,
    verdict,
)

from slipway_contracts import Envelope, new_event
from slipway_contracts.events.logs import LINES_TOPIC, LogLine, LogLinesAppended
from slipway_libs import db
from slipway_libs.inbox import InboxConsumer
from slipway_libs.migrations import apply_migrations, service_migrations
from slipway_logs.bootstrap import DEFINITION
from slipway_logs.domain import lines as domain
from slipway_logs.domain.paging import LogQuery
from slipway_logs.events.subscribers import consumers
from slipway_logs.usecases import reads

TARGET_LINES_PER_S = 20_000
WORDS = [
    "GET",
    "POST",
    "/api/v1/items",
    "200",
    "201",
    "404",
    "took",
    "ms",
    "user",
    "session",
    "cache",
    "miss",
    "hit",
    "worker",
    "started",
    "stopped",
    "error",
    "warning",
    "retry",
    "connection",
    "pool",
    "query",
    "SELECT",
    "INSERT",
    "commit",
    "rollback",
    "timeout",
    "build",
    "step",
    "RUN",
    "COPY",
    "layer",
    "pushed",
    "digest",
    "sha256",
    "listening",
    "port",
    "ready",
    "health",
    "check",
]


@dataclass(frozen=True)
class Params:
    lines: int = 100_000
    rounds: int = 3
    streams: int = 100
    lines_per_event: int = 50
    batch_events: int = 500  # records per process() call: the consumer's default batch size
    search_lines: int = 1_000_000
    search_repeats: int = 20


TARGET_SEARCH_P95_MS = 300
# a rare phrase, a common one, a word, a word that is not there, a pattern too short for trigrams
SEARCHES = ("digest sha256 listening", "rollback timeout", "worker", "zzzz", "ok")


@dataclass
class _Record:
    """A Kafka record as aiokafka hands it to the inbox."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]] = ()


class _NoDeadLetters:
    async def send(self, record: object, *, group_id: str, reason: str) -> None:
        raise AssertionError(f"a benchmark event was dead-lettered: {reason}")


@dataclass(frozen=True)
class Cpu:
    """CPU seconds a variant used: this process (decoding, validating, making the rows) and the
    PostgreSQL backends of its database (the wall clock of a shared 2-core machine says more
    about the other users than about the code; CPU per line much less)."""

    bench_s: float
    postgres_s: float

    def per_line_us(self, lines: int) -> tuple[float, float]:
        return self.bench_s / lines * 1e6, self.postgres_s / lines * 1e6


class CpuMeter:
    """CPU used from ``__init__`` to ``stop`` by this process and by the backends of database
    ``name`` (``postgres: <user> <database> …`` processes; one born meanwhile counts from 0)."""

    def __init__(self, name: str) -> None:
        self._name = name.encode()
        self._bench = _own_cpu_s()
        self._backends = self._ticks()

    def _ticks(self) -> dict[tuple[int, int], int]:
        stats = proc_stats()
        return {
            (pid, p.start): p.own
            for pid, p in stats.items()
            if p.comm == "postgres" and cmdline_has(pid, b" " + self._name + b" ")
        }

    def stop(self) -> Cpu:
        bench = _own_cpu_s() - self._bench
        after = self._ticks()
        used = sum(t - self._backends.get(key, 0) for key, t in after.items())
        return Cpu(bench, used / os.sysconf("SC_CLK_TCK"))


def _own_cpu_s() -> float:
    times = os.times()
    return times.user + times.system


@dataclass
class Round:
    ingest_s: float
    copy_s: float
    ingest_cpu: Cpu
    copy_cpu: Cpu


@dataclass
class Workload:
    events: list[Envelope]
    rows: list[tuple[object, ...]] = field(default_factory=list)  # for COPY
    # for COPY: each batch's search chunks (``rows`` in batches of ``batch_events`` events)
    chunks: list[list[tuple[object, ...]]] = field(default_factory=list)

    @property
    def lines(self) -> int:
        return sum(len(e.data["lines"]) for e in self.events)


def workload(params: Params) -> Workload:
    """Live lines of ``streams`` services, one event per ``lines_per_event`` lines, round robin
    (so every batch touches every stream), texts of 8-16 words (about 70-120 bytes)."""
    rng = random.Random(7)
    org = uuid.uuid4()
    services = [uuid.uuid4() for _ in range(params.streams)]
    events = []
    for n in range(params.lines // params.lines_per_event):
        service = services[n % params.streams]
        texts = [
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 16)))
            for _ in range(params.lines_per_event)
        ]
        payload = LogLinesAppended(
            kind="live",
            service_id=service,
            lines=[LogLine(at=datetime.now(UTC), stream="stdout", text=t) for t in texts],
        )
        events.append(new_event(payload, subject=str(service), source="bench", organization_id=org))
    rows: list[tuple[object, ...]] = []
    chunks: list[list[tuple[object, ...]]] = []
    heads: dict[uuid.UUID, int] = {}
    for start in range(0, len(events), params.batch_events):
        batch_rows, batch_chunks = _copy_rows(events[start : start + params.batch_events], heads)
        rows += batch_rows
        chunks.append(batch_chunks)
    return Workload(events, rows, chunks)


def _copy_rows(
    events: list[Envelope], heads: dict[uuid.UUID, int]
) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """The rows and search chunks the ingest stores for one batch of ``events``, cursors given
    as it gives them (``heads``: each stream's counter, moved on)."""
    appends = [_append(e) for e in events]
    for append in appends:
        heads[append.stream_id] = heads.get(append.stream_id, 0) + len(append.lines)
    rows = domain.rows(appends, heads)
    return [
        (
            r.stream_id,
            r.part.cursor,
            r.part.part,
            r.part.parts,
            r.part.at,
            r.organization_id,
            r.part.kind,
            r.part.stream,
            r.part.service_id,
            r.part.build_id,
            r.part.text,
        )
        for r in rows
    ], [
        (c.stream_id, c.first_cursor, c.last_cursor, c.organization_id, c.words)
        for c in domain.chunks(rows)
    ]


def _append(envelope: Envelope) -> domain.Append:
    payload = LogLinesAppended.model_validate(envelope.data)
    assert payload.service_id is not None and envelope.organization_id is not None
    return domain.Append(
        stream_kind="service",
        stream_id=payload.service_id,
        organization_id=envelope.organization_id,
        environment_id=None,
        kind="live",
        service_id=payload.service_id,
        build_id=None,
        lines=[domain.IncomingLine(at=x.at, stream=x.stream, text=x.text) for x in payload.lines],
    )


CHUNK_COLUMNS = ("stream_id", "first_cursor", "last_cursor", "organization_id", "words")
COLUMNS = (
    "stream_id",
    "cursor",
    "part",
    "parts",
    "at",
    "organization_id",
    "kind",
    "stream",
    "service_id",
    "build_id",
    "text",
)


async def _meter(pool: asyncpg.Pool) -> CpuMeter:
    async with pool.acquire() as conn:
        return CpuMeter(str(await conn.fetchval("SELECT current_database()")))


@contextlib.asynccontextmanager
async def logs_database(devstack: Devstack, label: str) -> AsyncIterator[asyncpg.Pool]:
    async with service_databases(devstack, label) as dsns:
        conn = await asyncpg.connect(dsns[label])
        try:
            await apply_migrations(conn, service_migrations("logs", DEFINITION.migrations))
        finally:
            await conn.close()
        pool = await db.create_pool(dsns[label], min_size=1, max_size=2)
        async with pool.acquire() as conn:
            # the previous variant's dirty pages are written now, not during this one
            await conn.execute("CHECKPOINT")
        try:
            yield pool
        finally:
            await pool.close()


async def _stored(pool: asyncpg.Pool) -> int:
    async with pool.acquire() as conn:
        return int(await conn.fetchval("SELECT count(*) FROM log_lines"))


async def time_ingest(devstack: Devstack, params: Params, work: Workload) -> tuple[float, Cpu]:
    records = [
        _Record(LINES_TOPIC, 0, n, e.subject.encode(), e.to_json())
        for n, e in enumerate(work.events)
    ]
    async with logs_database(devstack, "logs_ingest") as pool:
        # the lines' consumer (the service's other one reads the deployments' ends)
        [spec] = [c for c in consumers() if LINES_TOPIC in c.topics]
        consumer = InboxConsumer(
            group_id=spec.group_id,
            pool=pool,
            handlers=spec.handlers,
            dead_letters=_NoDeadLetters(),
        )
        meter = await _meter(pool)
        started = time.perf_counter()
        for start in range(0, len(records), params.batch_events):
            await consumer.process(records[start : start + params.batch_events])
        elapsed = time.perf_counter() - started
        cpu = meter.stop()
        assert await _stored(pool) == work.lines, "the ingest lost or duplicated lines"
    return elapsed, cpu


async def time_copy(devstack: Devstack, params: Params, work: Workload) -> tuple[float, Cpu]:
    chunk = params.batch_events * params.lines_per_event
    async with logs_database(devstack, "logs_copy") as pool:
        meter = await _meter(pool)
        started = time.perf_counter()
        await _copy(pool, work, chunk)
        elapsed = time.perf_counter() - started
        cpu = meter.stop()
        assert await _stored(pool) == work.lines
    return elapsed, cpu


async def _copy(pool: asyncpg.Pool, work: Workload, chunk: int) -> None:
    """``work``'s rows and search chunks, a batch a transaction, as the ingest stores them."""
    for n, start in enumerate(range(0, len(work.rows), chunk)):
        async with pool.acquire() as conn, conn.transaction():
            await conn.copy_records_to_table(
                "log_lines", records=work.rows[start : start + chunk], columns=COLUMNS
            )
            await conn.copy_records_to_table(
                "log_search", records=work.chunks[n], columns=CHUNK_COLUMNS
            )


@dataclass
class Search:
    q: str
    found: int
    p50_ms: float
    p95_ms: float


async def time_search(devstack: Devstack, params: Params) -> tuple[list[Search], float]:
    """Per query its p50/p95, and the p95 of every search together."""
    work = workload(replace(params, lines=params.search_lines))
    chunk = params.batch_events * params.lines_per_event
    every: list[float] = []
    out = []
    async with logs_database(devstack, "logs_search") as pool:
        await _copy(pool, work, chunk)
        async with pool.acquire() as conn:
            await conn.execute(_STREAMS_OF_COPIED_ROWS)
            await conn.execute("VACUUM ANALYZE log_lines")
        stream = work.rows[0][0]
        assert isinstance(stream, uuid.UUID)
        for q in SEARCHES:
            times = []
            for _ in range(params.search_repeats):
                async with pool.acquire() as conn, conn.transaction():
                    started = time.perf_counter()
                    page = await reads.read(
                        conn, "service", stream, LogQuery(q=q, tail=500), organization_id=None
                    )
                    times.append((time.perf_counter() - started) * 1000)
            every += times
            times.sort()
            out.append(Search(q, len(page.items), _pct(times, 0.5), _pct(times, 0.95)))
    return out, _pct(sorted(every), 0.95)


# the COPY writes lines only: their streams' counters, as the ingest would have left them
_STREAMS_OF_COPIED_ROWS = """
INSERT INTO log_streams (stream_id, stream_kind, organization_id, last_cursor)
SELECT stream_id, 'service', min(organization_id::text)::uuid, max(cursor)
FROM log_lines GROUP BY stream_id
"""


def _pct(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(params: Params = Params(), devstack: Devstack | None = None) -> str:
    devstack = devstack or load_devstack()
    work = workload(params)
    rounds = []
    for n in range(params.rounds):
        # alternate which goes first, so that neither always meets a warmer cache
        if n % 2 == 0:
            ingest_s, ingest_cpu = await time_ingest(devstack, params, work)
            copy_s, copy_cpu = await time_copy(devstack, params, work)
        else:
            copy_s, copy_cpu = await time_copy(devstack, params, work)
            ingest_s, ingest_cpu = await time_ingest(devstack, params, work)
        rounds.append(Round(ingest_s, copy_s, ingest_cpu, copy_cpu))
        print(f"logs_ingest: round {n + 1}: ingest {ingest_s:.2f}s, copy {copy_s:.2f}s")
    print(f"logs_ingest: search over {params.search_lines:,} lines...")
    searches, search_p95 = await time_search(devstack, params)
    facts = await machine(devstack)
    # the machine is shared: how busy it was
    facts["Load average at the end (1, 5, 15 min)"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return render(params, work.lines, rounds, facts) + search_section(params, searches, search_p95)


def search_section(params: Params, searches: list[Search], p95: float) -> str:
    rows = [f"| `{s.q}` | {s.found} | {s.p50_ms:.1f} | {s.p95_ms:.1f} |" for s in searches]
    return "\n".join(
        [
            "",
            f"## Search over {params.search_lines:,} stored lines",
            "",
            f"One stream of {params.streams} ({params.search_lines // params.streams:,} lines), "
            f"`q` with `tail=500` through the read use case, each query "
            f"{params.search_repeats} times. p95 of all: **{p95:.1f} ms** against the target "
            f"< {TARGET_SEARCH_P95_MS} ms: {verdict(p95 < TARGET_SEARCH_P95_MS)}.",
            "",
            "| q | lines found (≤ 500) | p50, ms | p95, ms |",
            "|---|---:|---:|---:|",
            *rows,
            "",
            "The index: GIN on (stream, trigrams of the words) of the search chunks "
            "(`log_search`, migration 0005: the distinct words of one stream's lines of one "
            "ingest batch, with their cursor range; btree_gin + pg_trgm), so that one stream's "
            "matching chunks are found without visiting the other streams'; the lines of those "
            "chunks are then checked one by one (`overlap || text ILIKE`). A `q` with no word "
            "of 3 letters or digits (`ok`) reads the stream by its own index instead. The "
            "texts come from a 40-word vocabulary, so common words match most lines: harder "
            "than real logs for a trigram index.",
            "",
        ]
    )


def render(params: Params, lines: int, rounds: list[Round], facts: dict[str, str]) -> str:
    ingest = statistics.median(lines / r.ingest_s for r in rounds)
    copy = statistics.median(lines / r.copy_s for r in rounds)
    ratios = sorted((r.copy_s / r.ingest_s) for r in rounds)
    ok = ingest >= TARGET_LINES_PER_S
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    out = [
        "# Logs ingest",
        "",
        f"Run {now} UTC by `bench/logs_ingest.py`: {lines:,} lines ({params.streams} streams, "
        f"{params.lines_per_event} lines an event, {params.batch_events} events a batch), "
        f"{params.rounds} rounds, each variant on a fresh database. Target: ingest **≥ "
        f"{TARGET_LINES_PER_S:,} lines/s** on this machine. Verdict: {verdict(ok)} "
        f"({ingest:,.0f} lines/s, median of the rounds).",
        "",
        "| | lines/s (median) | per round, s |",
        "|---|---:|---|",
        f"| Ingest (inbox + cursors + INSERT … unnest + chunks + NOTIFY) | {ingest:,.0f} | "
        + ", ".join(f"{r.ingest_s:.2f}" for r in rounds)
        + " |",
        f"| Plain COPY of the same rows | {copy:,.0f} | "
        + ", ".join(f"{r.copy_s:.2f}" for r in rounds)
        + " |",
        "",
        f"Ingest / COPY throughput: {statistics.median(ratios):.2f} (rounds: "
        + ", ".join(f"{x:.2f}" for x in ratios)
        + ").",
        "",
        "CPU per line, µs (median of the rounds): what the code costs, whatever the load "
        "(the wall clock above is mostly the share of the 2 cores the other users left).",
        "",
        "| | this process (Python) | PostgreSQL backends | both | lines/s one core could do |",
        "|---|---:|---:|---:|---:|",
        _cpu_row("Ingest", [r.ingest_cpu for r in rounds], lines),
        _cpu_row("Plain COPY", [r.copy_cpu for r in rounds], lines),
        "",
        "Both write the same rows into the same partitioned tables with the same indexes: the "
        "lines (primary key on stream, cursor, part, storage time; organization and storage "
        "time for the per-organization retention) and each batch's search chunks (`log_search`:"
        " GIN on stream and the trigrams of the chunk's distinct words, for `q`; primary key; "
        "organization and storage time). The Kafka hop is not in either figure "
        "(`outbox_pipeline` measures it).",
        "",
        *machine_section(facts),
    ]
    return "\n".join(out)


def _cpu_row(name: str, cpus: list[Cpu], lines: int) -> str:
    bench = statistics.median(c.per_line_us(lines)[0] for c in cpus)
    postgres = statistics.median(c.per_line_us(lines)[1] for c in cpus)
    both = bench + postgres
    return f"| {name} | {bench:.1f} | {postgres:.1f} | {both:.1f} | {1e6 / both:,.0f} |"


def parse_args() -> Params:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = Params()
    parser.add_argument("--lines", type=int, default=defaults.lines)
    parser.add_argument("--rounds", type=int, default=defaults.rounds)
    parser.add_argument("--search-lines", type=int, default=defaults.search_lines)
    args = parser.parse_args()
    return Params(lines=args.lines, rounds=args.rounds, search_lines=args.search_lines)


if __name__ == "__main__":
    arguments = parse_args()
    main_alone("logs", lambda: run(arguments))
