"""What Kafka SASL/SCRAM (and the ACLs it enables) costs the outbox pipeline, in one run.

The same ``outbox_pipeline`` benchmark, alternately against the devstack's broker (every listener
SASL/SCRAM, the StandardAuthorizer denying what no ACL allows) and against a throwaway broker
without authentication (``plain_kafka``: the devstack's configuration minus authentication, on
127.0.0.1 only, stopped and deleted at the end). On the devstack's broker the relay and the
consumer connect as service principals (``identity`` writes, ``catalog`` reads) with ACLs for
exactly this run's topic and group, as the services run: the admin principal is a super user,
whose requests the authorizer does not check against any ACL.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import outbox_pipeline
import raw_kafka
from outbox_pipeline import PipelineResult, Principals
from plain_kafka import plain_broker
from support import Devstack, OtherWork, machine_facts, other_work

from slipway_contracts import dead_letter_topic
from slipway_libs.kafka_access import (
    Binding,
    Operation,
    Pattern,
    Resource,
    create_acls,
    delete_acls,
)
from slipway_libs.settings import KafkaConnection

SASL, PLAIN = "sasl", "plain"
Connections = tuple[KafkaConnection, KafkaConnection]  # the relay's, the consumer's
RELAY_PRINCIPAL, CONSUMER_PRINCIPAL = "identity", "catalog"
OTHER_WORK = 0.10  # share of the cores used by other processes: above, the run is noisy


@dataclass(frozen=True)
class Params:
    rounds: int = 8  # each: one pipeline run per broker, the order alternating
    pipeline: outbox_pipeline.Params = field(
        default_factory=lambda: outbox_pipeline.Params(events=30_000, duration_s=6.0)
    )
    # per broker before the rounds, not counted: raw aiokafka, then a short pipeline run
    warmup_raw: int = 50_000
    warmup_s: float = 10.0  # raw aiokafka's latency phase
    warmup_events: int = 5_000


@dataclass(frozen=True)
class Result:
    params: Params
    runs: dict[str, list[PipelineResult]]  # variant -> one per round
    orders: list[tuple[str, str]]
    other: OtherWork
    load: tuple[float, float]  # 1-minute load average before and after
    facts: dict[str, str]


def service_principals(devstack: Devstack) -> Principals:
    """The relay as ``identity``, the consumer as ``catalog``, with ACLs for this run's topic,
    group and dead-letter topic only (literal names), granted by the admin and deleted after."""

    def as_principal(name: str) -> KafkaConnection:
        return KafkaConnection(
            devstack.kafka.bootstrap_servers,
            username=name,
            password=devstack.kafka_passwords[name],
            mechanism=devstack.kafka.mechanism,
        )

    @contextlib.asynccontextmanager
    async def connect(topic: str, group: str) -> AsyncIterator[Connections]:
        def allow(who: str, kind: Resource, name: str, *ops: Operation) -> list[Binding]:
            return [Binding(who, kind, name, Pattern.LITERAL, op) for op in ops]

        acls = [
            *allow(RELAY_PRINCIPAL, Resource.TOPIC, topic, Operation.WRITE, Operation.DESCRIBE),
            *allow(CONSUMER_PRINCIPAL, Resource.TOPIC, topic, Operation.READ),
            *allow(CONSUMER_PRINCIPAL, Resource.GROUP, group, Operation.READ),
            *allow(
                CONSUMER_PRINCIPAL,
                Resource.TOPIC,
                dead_letter_topic(group),
                Operation.WRITE,
                Operation.CREATE,
                Operation.DESCRIBE,
            ),
        ]
        await create_acls(devstack.kafka, acls)
        try:
            await asyncio.sleep(0.5)  # the ACLs reach the broker's authorizer via metadata
            yield as_principal(RELAY_PRINCIPAL), as_principal(CONSUMER_PRINCIPAL)
        finally:
            try:
                await delete_acls(devstack.kafka, acls)
            except Exception as exc:
                print(f"kafka_sasl: could not delete the run's ACLs: {exc!r}", flush=True)

    return connect


async def warm_up(where: Devstack, principals: Principals | None, params: Params) -> None:
    """Not counted: the throwaway broker's JVM starts cold (its JIT has compiled nothing), the
    devstack's has been serving for a while. Raw aiokafka first (many requests, quickly), then
    a short pipeline run (consumer groups, the idempotent producer, the principals' ACLs)."""
    raw = replace(params.pipeline, events=params.warmup_raw, duration_s=params.warmup_s)
    await raw_kafka.run(where, raw, payload_bytes=313)
    short = replace(params.pipeline, events=params.warmup_events, duration_s=3.0)
    await outbox_pipeline.run(where, short, principals)


async def run(devstack: Devstack, params: Params) -> Result:
    missing = {RELAY_PRINCIPAL, CONSUMER_PRINCIPAL} - set(devstack.kafka_passwords)
    if missing or devstack.kafka.username is None:
        raise RuntimeError(f"the devstack's broker has no SASL principals {sorted(missing)}")
    load_before = os.getloadavg()[0]
    print("kafka_sasl: starting a throwaway broker without authentication...", flush=True)
    async with plain_broker() as broker:
        # env_file's directory names the broker's process for the CPU figures (its JVM's
        # command line holds it); no env file is read from there
        plain = Devstack(broker.kafka, devstack.admin_url, broker.home / "env")
        targets: dict[str, tuple[Devstack, Principals | None]] = {
            SASL: (devstack, service_principals(devstack)),
            PLAIN: (plain, None),
        }
        for name, (where, principals) in targets.items():
            print(f"kafka_sasl: warm-up against the {name} broker...", flush=True)
            await warm_up(where, principals, params)
        runs: dict[str, list[PipelineResult]] = {SASL: [], PLAIN: []}
        orders: list[tuple[str, str]] = []
        async with other_work(devstack) as other:
            for index in range(params.rounds):
                order = (SASL, PLAIN) if index % 2 == 0 else (PLAIN, SASL)
                orders.append(order)
                for name in order:
                    where, principals = targets[name]
                    result = await outbox_pipeline.run(where, params.pipeline, principals)
                    runs[name].append(result)
                    print(
                        f"kafka_sasl: round {index + 1}/{params.rounds} {name}: "
                        f"{result.throughput:,.0f} events/s, p99 {result.latency.p99:.1f} ms",
                        flush=True,
                    )
    facts = machine_facts(devstack, runs[SASL][0].postgres_version)
    facts["Kafka"] += "; and a throwaway broker of the same jars and settings, no authentication"
    return Result(params, runs, orders, other, (load_before, os.getloadavg()[0]), facts)


# --- report ---------------------------------------------------------------------------------


def _median(values: list[float]) -> float:
    return statistics.median(values)


@dataclass(frozen=True)
class Ratios:
    """SASL / plain of one figure, round by round (each round ran both brokers back to back,
    so a slow spell of the machine weighs on both sides of a ratio alike)."""

    values: list[float]

    @property
    def median(self) -> float:
        return _median(self.values)

    def verdict(self, kind: str) -> str:
        low, high = min(self.values), max(self.values)
        spread = f"the rounds' ratios span {low:.2f} to {high:.2f}"
        if low < 1 < high:
            return (
                f"{spread}, on both sides of 1: the difference is below what this run can "
                "resolve on this machine."
            )
        worse = high < 1 if kind == "a rate" else low > 1
        return f"{spread}: SASL {'costs' if worse else 'does not cost'} in every round."


def paired(
    sasl: list[PipelineResult], plain: list[PipelineResult], of: Callable[[PipelineResult], float]
) -> Ratios:
    return Ratios([of(s) / of(q) for s, q in zip(sasl, plain, strict=True)])


def render(result: Result) -> str:
    p = result.params.pipeline
    sasl, plain = result.runs[SASL], result.runs[PLAIN]
    late = max(r.pacing.late_ticks for r in (*sasl, *plain)) / max(1, p.ticks)
    noisy = []
    if result.other.share > OTHER_WORK:
        noisy.append(f"other processes used {result.other.share:.0%} of the cores during the run")
    if late > 0.01:
        noisy.append(f"a latency writer was late on up to {late:.0%} of its ticks")

    def row(label: str, of: Callable[[PipelineResult], float], fmt: str = ",.0f") -> str:
        s, q = _median([of(r) for r in sasl]), _median([of(r) for r in plain])
        if not all(of(r) for r in plain):
            return f"| {label} | {s:{fmt}} | {q:{fmt}} | n/a | n/a |"
        ratios = paired(sasl, plain, of)
        low, high = min(ratios.values), max(ratios.values)
        spread = f"{low:.2f} to {high:.2f}"
        return f"| {label} | {s:{fmt}} | {q:{fmt}} | {ratios.median:.2f} | {spread} |"

    def kafka_cores(r: PipelineResult, run: int) -> float:
        return r.cores[run].get("Kafka", 0.0)

    lat = f"at {p.rate:,}/s"
    tp = paired(sasl, plain, lambda r: r.throughput)
    p99 = paired(sasl, plain, lambda r: r.latency.p99)
    lines = [
        "# Outbox pipeline: the cost of Kafka SASL/SCRAM",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `make bench` (`bench/run.py --only "
        "kafka_sasl`): the outbox pipeline benchmark (see `bench/README.md`) against the "
        "devstack's broker (SASL/SCRAM on every listener, ACLs) and against a throwaway broker "
        f"without authentication, in {result.params.rounds} alternating rounds of one run on "
        f"one machine. **SASL / plain: throughput {tp.median:.2f}, p99 latency "
        f"{p99.median:.2f}** (the median of the rounds' ratios; each round ran both brokers "
        f"back to back). Throughput: {tp.verdict('a rate')} p99: {p99.verdict('a latency')}",
        "",
    ]
    if noisy:
        lines += [
            f"> **Noisy run**: {'; '.join(noisy)}. The figures are pessimistic, the ratios "
            "less so (both brokers met the load alike, round after round); run again on a "
            "quiet machine before drawing conclusions.",
            "",
        ]
    lines += [
        "## Results",
        "",
        "Medians over the rounds of each broker's figure, and the median of the rounds' "
        "ratios; *SASL / plain* above 1 for a latency, below 1 for a rate, is what "
        "authentication costs.",
        "",
        "| Measure | SASL/SCRAM + ACLs (devstack broker) | No authentication (throwaway "
        "broker) | SASL / plain | its range over the rounds |",
        "| --- | --: | --: | --: | --: |",
        row(f"Throughput end to end, events/s (N = {p.events:,})", lambda r: r.throughput),
        row("Relay: start → every row acknowledged by Kafka, events/s", lambda r: r.relay_rate),
        row("Inbox consumer: first → last effect, events/s", lambda r: r.apply_rate),
        row(f"Latency p50 {lat}, ms", lambda r: r.latency.p50, ",.1f"),
        row(f"Latency p95 {lat}, ms", lambda r: r.latency.p95, ",.1f"),
        row(f"Latency p99 {lat}, ms", lambda r: r.latency.p99, ",.1f"),
        row(f"Latency max {lat}, ms", lambda r: r.latency.max, ",.1f"),
        row("the relay's send → effect applied, p99, ms", lambda r: r.from_kafka.p99, ",.1f"),
        row("Kafka's CPU, cores, throughput run", lambda r: kafka_cores(r, 0), ".2f"),
        row("Kafka's CPU, cores, latency run", lambda r: kafka_cores(r, 1), ".2f"),
        row("Relay's CPU, cores, latency run", lambda r: r.cores[1].get("relay", 0.0), ".2f"),
        row(
            "Consumer's CPU, cores, latency run",
            lambda r: r.cores[1].get("consumer", 0.0),
            ".2f",
        ),
        "",
        "## Per round",
        "",
        "| Round | Order | SASL events/s | plain events/s | SASL / plain | SASL p99, ms | "
        "plain p99, ms | SASL / plain |",
        "| --: | --- | --: | --: | --: | --: | --: | --: |",
        *(
            f"| {i + 1} | {' then '.join(result.orders[i])} | {s.throughput:,.0f} | "
            f"{q.throughput:,.0f} | {s.throughput / q.throughput:.2f} | {s.latency.p99:.1f} | "
            f"{q.latency.p99:.1f} | {s.latency.p99 / q.latency.p99:.2f} |"
            for i, (s, q) in enumerate(zip(sasl, plain, strict=True))
        ),
        "",
        "## How it was measured",
        "",
        f"- Each run is the whole `outbox_pipeline` benchmark: fresh databases and topic, "
        f"{p.events:,} events pre-written then relayed and applied (throughput), then "
        f"{p.rate:,} events/s for {p.duration_s:g} s (latency, the first {p.warmup_s:g} s "
        f"discarded); relay batch {p.relay_batch}, consumer batch {p.consumer_batch}. Raw "
        "aiokafka is not run here.",
        "- **SASL**: the devstack's broker as `make infra-up` configures it (SASL_PLAINTEXT "
        "with SCRAM-SHA-256 on the client listener, the StandardAuthorizer denying what no ACL "
        f"allows). The relay connects as `{RELAY_PRINCIPAL}`, the consumer as "
        f"`{CONSUMER_PRINCIPAL}`, each allowed by literal ACLs on this run's topic, consumer "
        "group and dead-letter topic only (granted by the admin before the run, deleted "
        "after): what the services do, so the authorizer checks every request against ACLs.",
        "- **plain**: a second single-node KRaft broker started by the benchmark "
        "(`bench/plain_kafka.py`) from the same cached jars, JVM options and "
        "`server.properties` as the devstack's (`deploy/devstack/devstack.py`), minus every "
        "authentication and authorization setting, PLAINTEXT listeners on 127.0.0.1 only; "
        "stopped and its directory deleted at the end. No principal, no authorizer.",
        f"- A warm-up per broker before the rounds, not counted (the throwaway broker's JVM "
        f"starts cold): {result.params.warmup_raw:,} messages and {result.params.warmup_s:g} s "
        f"at {p.rate:,}/s through raw aiokafka, then a pipeline run of "
        f"{result.params.warmup_events:,} events and 3 s of latency. "
        "Then the rounds, the order alternating (*Order*), so that a slow spell of the "
        "machine hits both brokers.",
        "- The devstack's broker also serves whatever else uses the devstack meanwhile (other "
        "tests or benchmarks): its *Kafka's CPU* counts all its users; the throwaway broker "
        "serves only this benchmark. The same holds for PostgreSQL, shared by both variants.",
        "",
        "## Machine",
        "",
        "|  |  |",
        "| --- | --- |",
        *(f"| {k} | {v} |" for k, v in result.facts.items()),
        f"| Other work during the rounds | {result.other.share:.0%} of all cores "
        f"({result.other.cpu_s:.0f} CPU-s in {result.other.wall_s:.0f} s) used by processes "
        "other than the benchmark's and the devstack's |",
        f"| Load average (1 min) | {result.load[0]:.2f} before the run, {result.load[1]:.2f} at "
        "its end |",
        "",
    ]
    return "\n".join(lines)
