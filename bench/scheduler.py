"""Scheduler benchmark: timers fired per second with 100,000 scheduled timers and how late they
fire, on the devstack's PostgreSQL.

    .venv/bin/python bench/scheduler.py [--timers 100000] [--spread 100] [--loops 2]

On a fresh, migrated scheduler database, with the scheduler's real timer loop
(``slipway_scheduler.worker.TimerLoop``: ``FOR UPDATE SKIP LOCKED`` claims of 500, the command
of each firing written to the outbox, the timer moved on, one transaction per batch), ``--loops``
loops at once in this process (each its own pool), as scheduler worker processes share a table:

- **burst**: ``--timers`` cron timers all due at the same instant: how fast they drain
  (timers fired per second, from the instant they were due to the last one fired) and how late
  each fired (the scheduler records every firing's lateness: claim time minus due time);
- **steady**: ``--timers`` timers due one after the other, evenly over ``--spread`` seconds
  (so ``timers / spread`` fall due each second, all 100,000 scheduled at the start): lateness
  p50 / p99 / max (target p99 < 1 s) and the rate they fired at.

Each timer's schedule is yearly (``0 0 1 1 *``), so it fires once in the run. The outbox rows
the firings write stay unpublished (no relay runs): the firing's cost includes writing them.

- **webhooks**: ``--webhooks`` outgoing webhooks (one in twenty answers 500: 5 % of targets
  failing) of a local receiver on 127.0.0.1 (allow-listed), ``--events`` deployment events each
  → one delivery per webhook, sent by ``--loops`` of the scheduler's delivery loops
  (``DeliveryLoop``: claimed and leased with ``SKIP LOCKED``, signed, sent over HTTP, every
  attempt recorded; failures wait for their back-off): first attempts per second.

Not measured here (the report says so): git push delivery → deployment queued (it needs the
gateway, scheduler, deployer and Kafka as processes).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
from support import (
    Devstack,
    Latencies,
    load_devstack,
    machine_facts,
    machine_section,
    main_alone,
    postgres_version,
    service_databases,
    verdict,
)

from slipway_libs import db
from slipway_libs.crypto import Sealer, new_key_setting
from slipway_libs.egress import EgressPolicy
from slipway_libs.migrations import migrate
from slipway_scheduler.adapters.clock import SystemClock
from slipway_scheduler.adapters.webhook_sender import HttpSender
from slipway_scheduler.bootstrap import DEFINITION
from slipway_scheduler.db import delivery_queries
from slipway_scheduler.usecases import webhooks
from slipway_scheduler.usecases.delivering import DeliveryDeps
from slipway_scheduler.worker import DeliveryLoop, TimerLoop

YEARLY = "0 0 1 1 *"
TARGET_P99_MS = 1000.0
BATCH = 500  # the scheduler's default timer_batch_size


@dataclass(frozen=True)
class Params:
    timers: int = 100_000
    spread_s: float = 100.0
    loops: int = 2
    webhooks: int = 20
    events: int = 100


@dataclass(frozen=True)
class Phase:
    name: str
    timers: int
    due_over_s: float
    wall_s: float  # from the first due instant to the last firing
    fired_per_s: float
    lateness: Latencies
    load: tuple[float, float]  # the 1-minute load average at the start and at the end


async def _insert_timers(
    pool: asyncpg.Pool, count: int, first_due: datetime, spread_s: float
) -> None:
    """``count`` cron timers, due evenly from ``first_due`` over ``spread_s`` (0: all at once)."""
    org, env = uuid.uuid4(), uuid.uuid4()
    step = spread_s / count if spread_s else 0.0
    rows = [
        (
            "cron",
            uuid.uuid4(),
            org,
            env,
            YEARLY,
            "UTC",
            first_due + timedelta(seconds=i * step),
        )
        for i in range(count)
    ]
    async with pool.acquire() as conn:
        await conn.copy_records_to_table(
            "timers",
            records=rows,
            columns=[
                "kind",
                "target_id",
                "organization_id",
                "environment_id",
                "expression",
                "timezone",
                "next_fire_at",
            ],
        )


async def _fired(pool: asyncpg.Pool) -> int:
    async with pool.acquire() as conn:
        return int(await conn.fetchval("SELECT count(*) FROM timers WHERE fired > 0"))


async def _phase(devstack: Devstack, dsn: str, params: Params, name: str, spread_s: float) -> Phase:
    admin = await db.create_pool(dsn, max_size=2)
    pools = [await db.create_pool(dsn, max_size=3) for _ in range(params.loops)]
    loops: list[asyncio.Task[None]] = []
    try:
        async with admin.acquire() as conn:
            await conn.execute("TRUNCATE timers, outbox")
        lead_s = 3.0  # the rows are in before the first one falls due
        first_due = datetime.now(UTC) + timedelta(seconds=lead_s)
        await _insert_timers(admin, params.timers, first_due, spread_s)
        async with admin.acquire() as conn:
            await conn.execute("ANALYZE timers")
        load_before = os.getloadavg()[0]
        loops = [
            asyncio.create_task(
                TimerLoop(pool, dsn, SystemClock(), batch_size=BATCH, poll_s=0.5).run()
            )
            for pool in pools
        ]
        deadline = time.monotonic() + lead_s + spread_s + 600
        while await _fired(admin) < params.timers:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name}: not every timer fired within 10 minutes")
            await asyncio.sleep(0.2)
        async with admin.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT max(last_fired_at) AS last, count(*) AS n FROM timers WHERE fired > 0"
            )
            found = await conn.fetch("SELECT last_lateness_ms FROM timers")
            lateness = [float(r["last_lateness_ms"]) for r in found]
            outbox_rows = int(await conn.fetchval("SELECT count(*) FROM outbox"))
        if outbox_rows != params.timers:
            raise RuntimeError(f"{name}: {outbox_rows} commands for {params.timers} firings")
        wall_s = (row["last"] - first_due).total_seconds()
        return Phase(
            name=name,
            timers=params.timers,
            due_over_s=spread_s,
            wall_s=wall_s,
            fired_per_s=params.timers / wall_s if wall_s > 0 else float("nan"),
            lateness=Latencies.of(lateness),
            load=(load_before, os.getloadavg()[0]),
        )
    finally:
        for task in loops:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for pool in (*pools, admin):
            await pool.close()


@dataclass(frozen=True)
class Deliveries:
    deliveries: int
    failing_share: float
    wall_s: float
    per_s: float
    succeeded: int
    load: tuple[float, float]


class _Receiver:
    """A minimal HTTP endpoint on 127.0.0.1: 500 for ``/fail/...``, 200 otherwise."""

    async def __aenter__(self) -> _Receiver:
        self.writers: set[asyncio.StreamWriter] = set()
        self.server = await asyncio.start_server(self._answer, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        for writer in list(self.writers):  # the sender's kept-alive connections
            writer.close()
        self.server.close()
        await self.server.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
                length = 0
                for line in head.split("\r\n"):
                    name, _, value = line.partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                await reader.readexactly(length)
                code = b"500 Internal Server Error" if " /fail/" in head else b"200 OK"
                writer.write(b"HTTP/1.1 " + code + b"\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        self.writers.discard(writer)
        writer.close()


async def _deliveries(dsn: str, params: Params) -> Deliveries:
    sealer = Sealer.from_setting(new_key_setting("b1"))
    pool = await db.create_pool(dsn, max_size=2)
    pools = [await db.create_pool(dsn, max_size=3) for _ in range(params.loops)]
    loops: list[asyncio.Task[None]] = []
    try:
        async with _Receiver() as receiver:
            allow = EgressPolicy.from_setting(f"127.0.0.1:{receiver.port}")
            org = uuid.uuid4()
            hooks = []
            async with db.transaction(pool) as conn:
                for i in range(params.webhooks):
                    path = "fail" if i % 20 == 0 else "ok"
                    url = f"http://127.0.0.1:{receiver.port}/{path}/{i}"
                    new = webhooks.NewWebhook(url=url, events=["deployment.succeeded"])
                    made = await webhooks.create(
                        conn, webhooks.WebhookDeps(sealer=sealer, egress=allow), org, new
                    )
                    hooks.append(uuid.UUID(str(made["id"])))
                pending = [
                    delivery_queries.NewDelivery(
                        delivery_id=uuid.uuid4(),
                        webhook_id=hook,
                        organization_id=org,
                        event_id=event,
                        event="deployment.succeeded",
                        body='{"type": "deployment.succeeded", "data": {}}',
                    )
                    for event in (uuid.uuid4() for _ in range(params.events))
                    for hook in hooks
                ]
                await delivery_queries.insert_deliveries(conn, pending, datetime.now(UTC))
            sender = HttpSender(allow, timeout_s=5)
            deps = DeliveryDeps(sealer=sealer, sender=sender, clock=SystemClock())
            load_before, started = os.getloadavg()[0], time.monotonic()
            loops = [
                asyncio.create_task(DeliveryLoop(p, dsn, deps, batch_size=50, poll_s=0.5).run())
                for p in pools
            ]
            total = len(pending)
            while True:
                async with pool.acquire() as conn:
                    tried = await conn.fetchval(
                        "SELECT count(*) FROM webhook_deliveries WHERE attempts > 0"
                    )
                if tried >= total:
                    break
                if time.monotonic() - started > 600:
                    raise RuntimeError(f"webhooks: {tried} of {total} tried in 10 minutes")
                await asyncio.sleep(0.2)
            wall_s = time.monotonic() - started
            for task in loops:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await sender.close()
            async with pool.acquire() as conn:
                succeeded = await conn.fetchval(
                    "SELECT count(*) FROM webhook_deliveries WHERE status = 'SUCCEEDED'"
                )
        failing = sum(1 for i in range(params.webhooks) if i % 20 == 0) / params.webhooks
        return Deliveries(
            total,
            failing,
            wall_s,
            total / wall_s,
            int(succeeded),
            (load_before, os.getloadavg()[0]),
        )
    finally:
        for task in loops:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for each in (*pools, pool):
            await each.close()


async def run(devstack: Devstack | None = None, params: Params | None = None) -> str:
    devstack = devstack or load_devstack()
    params = params or Params()
    async with service_databases(devstack, "scheduler") as dsns:
        dsn = dsns["scheduler"]
        await migrate(dsn, "scheduler", DEFINITION.migrations)
        print(f"scheduler: burst of {params.timers:,} timers...", flush=True)
        burst = await _phase(devstack, dsn, params, "burst", 0.0)
        print(f"scheduler: {params.timers:,} timers over {params.spread_s:g} s...", flush=True)
        steady = await _phase(devstack, dsn, params, "steady", params.spread_s)
        print(f"scheduler: {params.webhooks * params.events:,} webhook deliveries...", flush=True)
        sent = await _deliveries(dsn, params)
    facts = machine_facts(devstack, await postgres_version(devstack))
    return render(params, burst, steady, sent, facts)


def render(
    params: Params, burst: Phase, steady: Phase, sent: Deliveries, facts: dict[str, str]
) -> str:
    ok = steady.lateness.p99 < TARGET_P99_MS
    lines = [
        "# Scheduler",
        "",
        f"{params.timers:,} cron timers in the scheduler's table, fired by {params.loops} of the "
        f"scheduler's timer loops at once (`TimerLoop`, batches of {BATCH}, `FOR UPDATE SKIP "
        "LOCKED`; each firing writes its `JobRunRequested` to the outbox and moves the timer, "
        "one transaction per batch) on the devstack's PostgreSQL. Lateness is what the "
        "scheduler records for each firing: the claim's time minus the due instant. Written by "
        "`bench/scheduler.py` (`make bench`).",
        "",
        "| run | timers | due over | fired in | timers fired / s | lateness p50 | p95 | p99 "
        "| max | load average (1 min) at start → end |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for phase in (burst, steady):
        lat = phase.lateness
        lines.append(
            f"| {phase.name} | {phase.timers:,} | {phase.due_over_s:g} s | {phase.wall_s:.1f} s "
            f"| {phase.fired_per_s:,.0f} | {lat.p50:,.0f} ms | {lat.p95:,.0f} ms "
            f"| {lat.p99:,.0f} ms | {lat.max:,.0f} ms | {phase.load[0]:.1f} → {phase.load[1]:.1f} |"
        )
    lines += [
        "",
        f"Outgoing webhooks: {params.webhooks} webhooks of a local receiver on 127.0.0.1, "
        f"{sent.failing_share:.0%} of them answering 500, {params.events} events each → "
        f"{sent.deliveries:,} deliveries, sent by {params.loops} of the scheduler's delivery "
        "loops (`DeliveryLoop`, batches of 50, leased with `SKIP LOCKED`, HMAC-signed, each "
        "attempt recorded; a failure waits for its back-off, so it is tried once here).",
        "",
        "| deliveries | first attempts in | deliveries / s | succeeded | load average (1 min) |",
        "|---:|---:|---:|---:|---:|",
        f"| {sent.deliveries:,} | {sent.wall_s:.1f} s | {sent.per_s:,.0f} | {sent.succeeded:,} "
        f"| {sent.load[0]:.1f} → {sent.load[1]:.1f} |",
        "",
        *_load_caveat(burst, steady, sent),
        "## Verdicts",
        "",
        f"- Firing lateness p99 < 1 s with {params.timers:,} scheduled timers, "
        f"{params.timers / params.spread_s:,.0f} falling due each second: "
        f"{verdict(ok)} (p99 {steady.lateness.p99:,.0f} ms).",
        f"- Burst: all {params.timers:,} due at one instant drain at "
        f"{burst.fired_per_s:,.0f} timers/s (the last one {burst.lateness.max / 1000:.1f} s "
        "late): no target, the drain rate is the scheduler's ceiling on this machine.",
        "- Git push delivery → deployment queued p99 (target < 1 s): **NOT MEASURED** (no "
        "benchmark yet: it needs the gateway, scheduler, deployer and Kafka as processes).",
        f"- Outgoing webhook deliveries with {sent.failing_share:.0%} of targets failing: "
        f"{sent.per_s:,.0f} deliveries/s (no target set).",
        "",
        *machine_section(facts),
    ]
    return "\n".join(lines) + "\n"


def _load_caveat(burst: Phase, steady: Phase, sent: Deliveries) -> list[str]:
    """A warning when the machine was busier than it has cores: the figures are then the
    share of a crowded machine the scheduler got, not what it can do."""
    cores = os.cpu_count() or 1
    worst = max(*burst.load, *steady.load, *sent.load)
    if worst <= cores:
        return []
    return [
        f"**Caveat:** the 1-minute load average reached {worst:.0f} on {cores} cores during "
        "the run (other work on the machine, e.g. test suites): the scheduler got a small "
        "share of the CPU, so these figures are a floor; measure again on a quiet machine "
        "before reading the verdicts as the scheduler's.",
        "",
    ]


def parse_args() -> Params:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timers", type=int, default=Params.timers)
    parser.add_argument("--spread", type=float, default=Params.spread_s, help="seconds")
    parser.add_argument("--loops", type=int, default=Params.loops)
    parser.add_argument("--webhooks", type=int, default=Params.webhooks)
    parser.add_argument("--events", type=int, default=Params.events)
    args = parser.parse_args()
    return Params(
        timers=args.timers,
        spread_s=args.spread,
        loops=args.loops,
        webhooks=args.webhooks,
        events=args.events,
    )


if __name__ == "__main__":
    parameters = parse_args()
    main_alone("scheduler", lambda: run(params=parameters))
