"""Scheduler benchmark: timers fired per second with 100,000 scheduled timers and how late they
fire, on the devstack's PostgreSQL.

    .venv/bin/python bench/scheduler.py [--timers 100000] [--spread 100] [--loops 2]
        [--pushes 200] [--push-apps 10] [--push-concurrency 10] [--parts timers,webhooks,pushes]

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

- **pushes** (target p99 < 1 s): git push delivery → deployment queued, with identity,
  catalog, deployer, scheduler and gateway as processes (``start_platform``: fresh databases,
  the run's own topic prefix; no builder). ``--push-apps`` environments with one application
  each (``auto_deploy``, a repository of its own); ``--pushes`` signed GitHub push deliveries
  to ``POST /api/v1/hooks/git/{id}``, first one sender at a time, then
  ``--push-concurrency`` senders; each timed until this process receives the deployer's
  ``DeploymentQueued`` on Kafka (and the deployment's ``created_at`` read back).

``--parts timers,webhooks,pushes`` chooses what runs (all by default).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import math
import os
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
from aiokafka import ConsumerRecord
from deploy_overhead import Api, Stack, bounded, eventually, set_up_tenant
from support import (
    Devstack,
    Latencies,
    TopicTail,
    bench_platform,
    load_devstack,
    machine,
    machine_section,
    main_alone,
    service_databases,
    topic_partitions,
    verdict,
)

from slipway_contracts import Envelope
from slipway_contracts.events.deployer import DEPLOYMENT_TOPIC
from slipway_libs import db
from slipway_libs.crypto import Sealer, new_key_setting
from slipway_libs.egress import EgressPolicy
from slipway_libs.migrations import migrate
from slipway_libs.settings import KafkaConnection
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
    pushes: int = 200  # git push deliveries per run (sequential, then concurrent)
    push_apps: int = 10
    push_concurrency: int = 10
    parts: tuple[str, ...] = ("timers", "webhooks", "pushes")


@dataclass(frozen=True)
class Phase:
    name: str
    timers: int
    due_over_s: float
    wall_s: float  # from the first due instant to the last firing
    fired_per_s: float
    lateness: Latencies
    load: tuple[float, float]  # the 1-minute load average at the start and at the end
    # where the tail is: the seconds (of the due instants) with a firing over 1 s late, and
    # the worst firing's due instant, from the first due instant
    late_seconds: int
    worst_at_s: float


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


async def _all_fired(pool: asyncpg.Pool, count: int) -> bool:
    """Whether every timer fired. Asked five times a second, so first cheaply: the outbox's
    last id (one row per firing, its sequence restarted with the phase) reads one index
    entry where counting fired timers scans 100,000 rows (a CPU share taken from the loops)."""
    async with pool.acquire() as conn:
        if (await conn.fetchval("SELECT coalesce(max(id), 0) FROM outbox")) < count:
            return False
        fired = await conn.fetchval("SELECT count(*) FROM timers WHERE fired > 0")
        return int(fired) >= count


async def _phase(devstack: Devstack, dsn: str, params: Params, name: str, spread_s: float) -> Phase:
    admin = await db.create_pool(dsn, max_size=2)
    pools = [await db.create_pool(dsn, max_size=3) for _ in range(params.loops)]
    loops: list[asyncio.Task[None]] = []
    try:
        async with admin.acquire() as conn:
            await conn.execute("TRUNCATE timers, outbox RESTART IDENTITY")
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
        while not await _all_fired(admin, params.timers):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name}: not every timer fired within 10 minutes")
            await asyncio.sleep(0.2)
        async with admin.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT max(last_fired_at) AS last, count(*) AS n FROM timers WHERE fired > 0"
            )
            found = await conn.fetch("SELECT last_scheduled_at, last_lateness_ms FROM timers")
            lateness = [float(r["last_lateness_ms"]) for r in found]
            by_due = [
                ((r["last_scheduled_at"] - first_due).total_seconds(), float(r["last_lateness_ms"]))
                for r in found
            ]
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
            late_seconds=len({int(at) for at, ms in by_due if ms > TARGET_P99_MS}),
            worst_at_s=max(by_due, key=lambda due: due[1])[0],
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


# --- git push delivery → deployment queued ----------------------------------------------------

PUSH_SERVICES = ["identity", "catalog", "deployer", "scheduler", "gateway"]
QUEUED_TYPE = "deployer.DeploymentQueued"
QUEUED_WITHIN_S = 60.0  # a delivery whose deployment is not queued by then counts as lost


@dataclass
class App:
    """One application with ``auto_deploy`` on, alone in its environment and repository, so
    that a push to its repository deploys it and nothing else."""

    env_id: str
    service_id: str
    repo: str


@dataclass
class Queued:
    deployment_id: str
    seen: float  # wall clock: when this process received the deployer's DeploymentQueued
    published: float  # wall clock: the Kafka record's timestamp (the deployer's outbox relay)


@dataclass
class Push:
    app: App
    commit: str
    sent: float  # wall clock, just before the delivery was sent to the gateway
    answered: float = math.nan  # the gateway's 202
    queued: Queued | None = None
    created: float = math.nan  # the deployment's created_at (the deployer's row)

    def part(self, name: str) -> float:
        if name == "answer":
            return self.answered - self.sent
        if self.queued is None:
            return math.nan
        return {
            "row": self.created - self.sent,
            "published": self.queued.published - self.sent,
            "queued": self.queued.seen - self.sent,
        }[name]


@dataclass(frozen=True)
class PushRun:
    mode: str
    concurrency: int
    pushes: list[Push]
    wall_s: float
    load: tuple[float, float]

    @property
    def lost(self) -> int:
        return sum(1 for p in self.pushes if p.queued is None)

    def stats(self, part: str) -> Latencies:
        values = [p.part(part) * 1000 for p in self.pushes]
        return Latencies.of([v for v in values if not math.isnan(v)])


class QueuedEvents(TopicTail):
    """Reads the deployer's deployment topic from its end, from before the first delivery, and
    keeps each service's ``git_push`` DeploymentQueued events in the order they came."""

    poll_ms = 200

    def __init__(self, kafka: KafkaConnection, prefix: str) -> None:
        super().__init__(kafka, topic_partitions(prefix, DEPLOYMENT_TOPIC))
        self.by_service: dict[str, list[Queued]] = {}
        self._arrived = asyncio.Condition()

    def count(self, service_id: str) -> int:
        return len(self.by_service.get(service_id, []))

    async def nth(self, service_id: str, index: int, timeout_s: float) -> Queued | None:
        """The service's ``index``-th queued event (from 0), once it came; None after
        ``timeout_s``."""
        assert self.task is not None

        def there() -> bool:
            self.check()
            return self.count(service_id) > index

        async with self._arrived:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait_for(there), timeout_s)
        return self.by_service[service_id][index] if there() else None

    async def took(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        seen = time.time()
        for record in records:
            envelope = Envelope.from_json(record.value)
            if envelope.type != QUEUED_TYPE or envelope.data["trigger"] != "git_push":
                continue
            queued = Queued(str(envelope.data["deployment_id"]), seen, record.timestamp / 1000)
            for service in envelope.data["service_ids"]:
                self.by_service.setdefault(str(service), []).append(queued)
        async with self._arrived:
            self._arrived.notify_all()


def github_push(repo: str, commit: str) -> bytes:
    """A push event's body as GitHub sends it (the fields Slipway reads, and some it does not)."""
    return json.dumps(
        {
            "ref": "refs/heads/main",
            "before": "0" * 40,
            "after": commit,
            "created": False,
            "deleted": False,
            "repository": {"name": repo.rsplit("/", 1)[-1], "clone_url": repo},
            "pusher": {"name": "bench"},
            "head_commit": {"id": commit, "message": "a change"},
        }
    ).encode()


def github_headers(secret: str, body: bytes) -> dict[str, str]:
    """Signed as GitHub signs: HMAC-SHA256 of the raw body with the endpoint's secret."""
    mac = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "content-type": "application/json",
        "user-agent": "GitHub-Hookshot/bench",
        "x-github-event": "push",
        "x-github-delivery": str(uuid.uuid4()),
        "x-hub-signature-256": f"sha256={mac}",
    }


@dataclass
class Hook:
    api: Api
    path: str
    secret: str
    events: QueuedEvents


async def _deliver(hook: Hook, app: App) -> Push:
    """One signed push to the app's repository at a new commit, then its deployment's
    DeploymentQueued (or ``QUEUED_WITHIN_S`` of waiting for it)."""
    commit = secrets.token_hex(20)
    body = github_push(app.repo, commit)
    headers = github_headers(hook.secret, body)
    index = hook.events.count(app.service_id)
    push = Push(app, commit, time.time())
    answer = await hook.api.client.post(hook.path, content=body, headers=headers)
    push.answered = time.time()
    if answer.status_code != 202 or answer.json()["result"] != "deployed":
        raise RuntimeError(f"push to {app.repo}: {answer.status_code} {answer.text[:300]}")
    push.queued = await hook.events.nth(app.service_id, index, QUEUED_WITHIN_S)
    return push


async def _push_run(
    hook: Hook, apps: list[App], mode: str, total: int, concurrency: int
) -> PushRun:
    """``total`` deliveries by ``concurrency`` senders, each sending its next delivery once
    the last one's deployment is queued; each sender has apps of its own, so that every
    deployment queued for an app is the one its sender waits for."""
    load_before, started = os.getloadavg()[0], time.monotonic()

    async def sender(index: int) -> list[Push]:
        mine = apps[index::concurrency]
        return [await _deliver(hook, mine[i % len(mine)]) for i in range(total // concurrency)]

    done = await asyncio.gather(*(sender(i) for i in range(concurrency)))
    pushes = [push for pushes in done for push in pushes]
    return PushRun(
        mode, concurrency, pushes, time.monotonic() - started, (load_before, os.getloadavg()[0])
    )


async def _set_up_apps(api: Api, count: int) -> tuple[str, list[App]]:
    """``count`` environments of a new organization, each with one application (auto_deploy,
    its own repository, branch main), known to the deployer."""
    tenant = await set_up_tenant(api)

    async def one(index: int) -> App:
        env = await api.call(
            "POST",
            f"/projects/{tenant.project_id}/environments",
            {"name": f"push-{index}", "mode": "staging", "cluster_id": tenant.cluster_id},
            expect=201,
        )
        repo = f"https://github.com/bench/app-{index}.git"
        service = await api.call(
            "POST",
            f"/environments/{env['id']}/services",
            {
                "name": "web",
                "kind": "application",
                "git": {"url": repo, "branch": "main"},
                "auto_deploy": True,
                "ports": [{"port": 8080}],
            },
            expect=201,
        )
        return App(env["id"], service["id"], repo)

    apps = await bounded(4, (one(i) for i in range(count)))

    async def known(app: App) -> None:
        async def listed() -> bool:
            answer = await api.client.get(f"/environments/{app.env_id}/status", headers=api.auth)
            return answer.status_code == 200 and len(answer.json()["services"]) == 1

        await eventually(listed, within_s=120, what=f"environment {app.env_id} in the deployer")

    await bounded(4, (known(app) for app in apps))
    return tenant.org_id, apps


async def _warm_up(hook: Hook, app: App) -> None:
    """Until the scheduler's projection has the app (a push deploys it) and the deployer
    queues its deployment: neither is measured."""
    deadline = time.monotonic() + 120
    while True:
        body = github_push(app.repo, secrets.token_hex(20))
        index = hook.events.count(app.service_id)
        answer = await hook.api.client.post(
            hook.path, content=body, headers=github_headers(hook.secret, body)
        )
        if answer.status_code == 202 and answer.json()["result"] == "deployed":
            if await hook.events.nth(app.service_id, index, 120) is None:
                raise RuntimeError(f"warm-up: {app.repo}'s deployment never queued")
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"warm-up: {app.repo}: {answer.status_code} {answer.text[:200]}")
        await asyncio.sleep(0.5)


async def _created_at(api: Api, runs: list[PushRun]) -> None:
    """Each queued deployment's ``created_at`` (checking it is the pushed commit's)."""

    async def read(push: Push) -> None:
        if push.queued is None:
            return
        detail = await api.call("GET", f"/deployments/{push.queued.deployment_id}")
        if detail["version"] != push.commit or detail["trigger"] != "git_push":
            raise RuntimeError(f"deployment {push.queued.deployment_id} is not {push.commit}'s")
        push.created = datetime.fromisoformat(detail["created_at"]).timestamp()

    await bounded(8, (read(p) for run in runs for p in run.pushes))


async def _git_pushes(devstack: Devstack, params: Params) -> list[PushRun]:
    stack = Stack.of(devstack)
    async with bench_platform(devstack, PUSH_SERVICES, stack.platform_env()) as platform:
        api = Api(platform.url("gateway"))
        events = QueuedEvents(devstack.kafka, platform.prefix)
        await events.start()
        try:
            org, apps = await _set_up_apps(api, params.push_apps)
            made = await api.call(
                "POST", f"/organizations/{org}/git-webhooks", {"description": "bench"}, 201
            )
            hook = Hook(api, f"/hooks/git/{made['id']}", made["secret"], events)
            await bounded(4, (_warm_up(hook, app) for app in apps))
            runs = []
            for mode, concurrency in (
                ("sequential", 1),
                ("concurrent", params.push_concurrency),
            ):
                print(f"scheduler: {params.pushes} git pushes, {mode}...", flush=True)
                runs.append(await _push_run(hook, apps, mode, params.pushes, concurrency))
            await _created_at(api, runs)
        finally:
            await events.stop()
            await api.close()
        return runs


async def run(devstack: Devstack | None = None, params: Params | None = None) -> str:
    devstack = devstack or load_devstack()
    params = params or Params()
    burst = steady = sent = None
    pushes: list[PushRun] = []
    if "timers" in params.parts or "webhooks" in params.parts:
        async with service_databases(devstack, "scheduler") as dsns:
            dsn = dsns["scheduler"]
            await migrate(dsn, "scheduler", DEFINITION.migrations)
            if "timers" in params.parts:
                print(f"scheduler: burst of {params.timers:,} timers...", flush=True)
                burst = await _phase(devstack, dsn, params, "burst", 0.0)
                print(f"scheduler: {params.timers:,} timers over {params.spread_s:g} s...")
                steady = await _phase(devstack, dsn, params, "steady", params.spread_s)
            if "webhooks" in params.parts:
                print(f"scheduler: {params.webhooks * params.events:,} webhook deliveries...")
                sent = await _deliveries(dsn, params)
    if "pushes" in params.parts:
        print("scheduler: starting identity, catalog, deployer, scheduler, gateway...")
        pushes = await _git_pushes(devstack, params)
    facts = await machine(devstack)
    return render(params, burst, steady, sent, pushes, facts)


def render(
    params: Params,
    burst: Phase | None,
    steady: Phase | None,
    sent: Deliveries | None,
    pushes: list[PushRun],
    facts: dict[str, str],
) -> str:
    loads = [
        *(x for phase in (burst, steady) if phase is not None for x in phase.load),
        *(sent.load if sent is not None else ()),
        *(x for run in pushes for x in run.load),
    ]
    lines = [
        "# Scheduler",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `bench/scheduler.py` (`make bench`).",
        "",
        *_timer_lines(params, burst, steady),
        *_webhook_lines(params, sent),
        *_push_lines(params, pushes),
        *_load_caveat(loads),
        "## Verdicts",
        "",
        *_verdicts(params, burst, steady, sent, pushes),
        "",
        *machine_section(facts),
    ]
    return "\n".join(lines) + "\n"


def _timer_lines(params: Params, burst: Phase | None, steady: Phase | None) -> list[str]:
    if burst is None or steady is None:
        return ["Timers: not run this time (`--parts`).", ""]
    lines = [
        f"{params.timers:,} cron timers in the scheduler's table, fired by {params.loops} of the "
        f"scheduler's timer loops at once (`TimerLoop`, batches of {BATCH}, `FOR UPDATE SKIP "
        "LOCKED`; each firing writes its `JobRunRequested` to the outbox and moves the timer, "
        "one transaction per batch) on the devstack's PostgreSQL. Lateness is what the "
        "scheduler records for each firing: the claim's time minus the due instant.",
        "",
        "| run | timers | due over | fired in | timers fired / s | lateness p50 | p95 | p99 "
        "| max | seconds with a firing > 1 s late (worst due at) "
        "| load average (1 min) at start → end |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for phase in (burst, steady):
        lat = phase.lateness
        lines.append(
            f"| {phase.name} | {phase.timers:,} | {phase.due_over_s:g} s | {phase.wall_s:.1f} s "
            f"| {phase.fired_per_s:,.0f} | {lat.p50:,.0f} ms | {lat.p95:,.0f} ms "
            f"| {lat.p99:,.0f} ms | {lat.max:,.0f} ms "
            f"| {phase.late_seconds} (+{phase.worst_at_s:.1f} s) "
            f"| {phase.load[0]:.1f} → {phase.load[1]:.1f} |"
        )
    return [*lines, ""]


def _webhook_lines(params: Params, sent: Deliveries | None) -> list[str]:
    if sent is None:
        return ["Outgoing webhooks: not run this time (`--parts`).", ""]
    return [
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
    ]


def _push_lines(params: Params, runs: list[PushRun]) -> list[str]:
    if not runs:
        return ["Git push → deployment queued: not run this time (`--parts`).", ""]
    lines = [
        "Git push → deployment queued: identity, catalog, deployer, scheduler and gateway as "
        f"processes (fresh databases, real Kafka; no builder: the queued deployments wait for a "
        f"build nobody does). {params.push_apps} environments, each with one application "
        "(`auto_deploy`, a repository of its own, branch main). Each delivery is a push to one "
        "application's repository at a new commit, sent as GitHub sends it (the raw body "
        "HMAC-SHA256-signed with the endpoint's secret) to the public "
        "`POST /api/v1/hooks/git/{id}`; it is timed from just before it is sent until this "
        "process receives the deployer's `DeploymentQueued` for it on Kafka (the "
        "deployment's commit checked through `GET /deployments/{id}`). Each sender sends its "
        "next delivery once the last one's deployment is queued.",
        "",
        "| run | deliveries | senders | in | deliveries / s | answered (202) p50 / p99 "
        "| queued p50 | p95 | p99 | max | not queued within 60 s | load average (1 min) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        answer, queued = run.stats("answer"), run.stats("queued")
        lines.append(
            f"| {run.mode} | {len(run.pushes):,} | {run.concurrency} | {run.wall_s:.1f} s "
            f"| {len(run.pushes) / run.wall_s:,.1f} | {answer.p50:,.0f} / {answer.p99:,.0f} ms "
            f"| {queued.p50:,.0f} ms | {queued.p95:,.0f} ms | {queued.p99:,.0f} ms "
            f"| {queued.max:,.0f} ms | {run.lost} | {run.load[0]:.1f} → {run.load[1]:.1f} |"
        )
    lines += [
        "",
        "Where the time goes, from the delivery's sending (p50 / p99): the deployer's row "
        "(`created_at`: its transaction's start), its `DeploymentQueued` published (the Kafka "
        "record's timestamp: the deployer's outbox relay), received here.",
        "",
        "| run | deployment row | published | received |",
        "|---|---:|---:|---:|",
    ]
    for run in runs:
        row, pub, seen = (run.stats(p) for p in ("row", "published", "queued"))
        lines.append(
            f"| {run.mode} | {row.p50:,.0f} / {row.p99:,.0f} ms | {pub.p50:,.0f} / "
            f"{pub.p99:,.0f} ms | {seen.p50:,.0f} / {seen.p99:,.0f} ms |"
        )
    return [*lines, ""]


def _verdicts(
    params: Params,
    burst: Phase | None,
    steady: Phase | None,
    sent: Deliveries | None,
    pushes: list[PushRun],
) -> list[str]:
    lines = []
    if burst is not None and steady is not None:
        ok = steady.lateness.p99 < TARGET_P99_MS
        lines += [
            f"- Firing lateness p99 < 1 s with {params.timers:,} scheduled timers, "
            f"{params.timers / params.spread_s:,.0f} falling due each second: "
            f"{verdict(ok)} (p99 {steady.lateness.p99:,.0f} ms).",
            f"- Burst: all {params.timers:,} due at one instant drain at "
            f"{burst.fired_per_s:,.0f} timers/s (the last one {burst.lateness.max / 1000:.1f} s "
            "late): no target, the drain rate is the scheduler's ceiling on this machine.",
        ]
    else:
        lines.append("- Firing lateness: **NOT MEASURED** this time.")
    if pushes:
        for run in pushes:
            p99 = run.stats("queued").p99
            ok = p99 < TARGET_P99_MS and run.lost == 0
            lines.append(
                f"- Git push delivery → deployment queued p99 < 1 s, {run.mode} "
                f"({run.concurrency} sender{'s' if run.concurrency > 1 else ''}): {verdict(ok)} "
                f"(p99 {p99:,.0f} ms, {run.lost} not queued)."
            )
    else:
        lines.append("- Git push delivery → deployment queued: **NOT MEASURED** this time.")
    if sent is not None:
        lines.append(
            f"- Outgoing webhook deliveries with {sent.failing_share:.0%} of targets failing: "
            f"{sent.per_s:,.0f} deliveries/s (no target set)."
        )
    return lines


def _load_caveat(loads: list[float]) -> list[str]:
    """A warning when the machine was busier than it has cores: the figures are then the
    share of a crowded machine the scheduler got, not what it can do."""
    cores = os.cpu_count() or 1
    worst = max(loads, default=0.0)
    if worst <= cores:
        return []
    return [
        f"**Caveat:** the 1-minute load average reached {worst:.0f} on {cores} cores during "
        "the run (other work on the machine, e.g. test suites): the scheduler got a share of "
        "the CPU only, so these figures are a floor.",
        "",
    ]


def parse_args() -> Params:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timers", type=int, default=Params.timers)
    parser.add_argument("--spread", type=float, default=Params.spread_s, help="seconds")
    parser.add_argument("--loops", type=int, default=Params.loops)
    parser.add_argument("--webhooks", type=int, default=Params.webhooks)
    parser.add_argument("--events", type=int, default=Params.events)
    parser.add_argument("--pushes", type=int, default=Params.pushes)
    parser.add_argument("--push-apps", type=int, default=Params.push_apps)
    parser.add_argument("--push-concurrency", type=int, default=Params.push_concurrency)
    parser.add_argument(
        "--parts",
        default=",".join(Params.parts),
        help="which to run, comma-separated: timers, webhooks, pushes",
    )
    args = parser.parse_args()
    parts = tuple(p.strip() for p in args.parts.split(",") if p.strip())
    unknown = set(parts) - set(Params.parts)
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
    return Params(
        timers=args.timers,
        spread_s=args.spread,
        loops=args.loops,
        webhooks=args.webhooks,
        events=args.events,
        pushes=args.pushes,
        push_apps=args.push_apps,
        push_concurrency=args.push_concurrency,
        parts=parts,
    )


if __name__ == "__main__":
    parameters = parse_args()
    main_alone("scheduler", lambda: run(params=parameters))
