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
from plain_kafka import throwaway_broker
from support import Devstack, OtherWork, machine_facts, machine_section, other_work

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

SASL, FRESH, PLAIN = "sasl", "sasl-throwaway", "plain"
VARIANTS = (SASL, FRESH, PLAIN)
Connections = tuple[KafkaConnection, KafkaConnection]  # the relay's, the consumer's
RELAY_PRINCIPAL, CONSUMER_PRINCIPAL = "identity", "catalog"
OTHER_WORK = 0.10  # share of the cores used by other processes: above, the run is noisy


@dataclass(frozen=True)
class Params:
    rounds: int = 6  # each: one pipeline run per broker, the order rotating
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
    orders: list[tuple[str, ...]]
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
    print("kafka_sasl: starting two throwaway brokers, with and without SASL...", flush=True)
    async with (
        throwaway_broker(sasl=True, principals=(RELAY_PRINCIPAL, CONSUMER_PRINCIPAL)) as fresh,
        throwaway_broker() as plain,
    ):
        # env_file's directory names a broker's process for the CPU figures (its JVM's
        # command line holds it); no env file is read from there
        fresh_stack = Devstack(fresh.kafka, devstack.admin_url, fresh.home / "env", fresh.passwords)
        targets: dict[str, tuple[Devstack, Principals | None]] = {
            SASL: (devstack, service_principals(devstack)),
            FRESH: (fresh_stack, service_principals(fresh_stack)),
            PLAIN: (Devstack(plain.kafka, devstack.admin_url, plain.home / "env"), None),
        }
        for name, (where, principals) in targets.items():
            print(f"kafka_sasl: warm-up against the {name} broker...", flush=True)
            await warm_up(where, principals, params)
        runs: dict[str, list[PipelineResult]] = {name: [] for name in VARIANTS}
        orders: list[tuple[str, ...]] = []
        async with other_work(devstack) as other:
            for index in range(params.rounds):
                order = rotation(index)
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
    facts["Kafka"] += (
        "; and two throwaway brokers of the same jars and settings, one with SASL, one without"
    )
    return Result(params, runs, orders, other, (load_before, os.getloadavg()[0]), facts)


def rotation(index: int) -> tuple[str, ...]:
    """Round ``index``'s order: rotated by one every round, reversed every three, so that over
    six rounds every broker runs twice in every position."""
    shift = index % len(VARIANTS)
    order = VARIANTS[shift:] + VARIANTS[:shift]
    return order[::-1] if (index // len(VARIANTS)) % 2 else order


# --- report ---------------------------------------------------------------------------------


def _median(values: list[float]) -> float:
    return statistics.median(values)


@dataclass(frozen=True)
class Ratios:
    """SASL / plain of one figure, round by round (each round ran every broker back to back,
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
        found = "costs in every round" if worse else "is not slower in any round"
        return f"{spread}: SASL {found}."


def paired(
    sasl: list[PipelineResult], plain: list[PipelineResult], of: Callable[[PipelineResult], float]
) -> Ratios:
    return Ratios([of(s) / of(q) for s, q in zip(sasl, plain, strict=True)])


def render(result: Result) -> str:
    p = result.params.pipeline
    sasl, fresh, plain = (result.runs[name] for name in VARIANTS)
    late = max(r.pacing.late_ticks for r in (*sasl, *fresh, *plain)) / max(1, p.ticks)
    noisy = []
    if result.other.share > OTHER_WORK:
        noisy.append(f"other processes used {result.other.share:.0%} of the cores during the run")
    if late > 0.01:
        noisy.append(f"a latency writer was late on up to {late:.0%} of its ticks")

    def ratio(of: Callable[[PipelineResult], float], a: list[PipelineResult]) -> str:
        if not all(of(r) for r in plain):
            return "n/a | n/a"
        ratios = paired(a, plain, of)
        return f"{ratios.median:.2f} | {min(ratios.values):.2f} to {max(ratios.values):.2f}"

    def row(label: str, of: Callable[[PipelineResult], float], fmt: str = ",.0f") -> str:
        medians = " | ".join(f"{_median([of(r) for r in result.runs[v]]):{fmt}}" for v in VARIANTS)
        return f"| {label} | {medians} | {ratio(of, fresh)} | {ratio(of, sasl)} |"

    def kafka_cores(r: PipelineResult, run: int) -> float:
        return r.cores[run].get("Kafka", 0.0)

    def summary(a: list[PipelineResult]) -> str:
        tp = paired(a, plain, lambda r: r.throughput)
        p99 = paired(a, plain, lambda r: r.latency.p99)
        return (
            f"throughput **{tp.median:.2f}**, p99 latency **{p99.median:.2f}** (throughput: "
            f"{tp.verdict('a rate')} p99: {p99.verdict('a latency')})"
        )

    lat = f"at {p.rate:,}/s"
    lines = [
        "# Outbox pipeline: the cost of Kafka SASL/SCRAM",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `make bench` (`bench/run.py --only "
        "kafka_sasl`): the outbox pipeline benchmark (see `bench/README.md`) against three "
        "brokers in turn, in "
        f"{result.params.rounds} rounds of one run on one machine: a throwaway broker without "
        "authentication (*plain*), a throwaway broker with the devstack's SASL/SCRAM and ACLs "
        "(*SASL, throwaway*: as fresh and as idle as the plain one), and the devstack's own "
        "broker (*SASL, devstack*: also serving the other work on the machine).",
        "",
        f"- **SASL / plain, the two throwaway brokers**: {summary(fresh)}.",
        f"- **SASL / plain, the devstack's broker**: {summary(sasl)}.",
        "",
        "Ratios are the median of the rounds' ratios (each round ran every broker back to back).",
        "",
    ]
    if noisy:
        lines += [
            f"> **Noisy run**: {'; '.join(noisy)}. The figures are pessimistic, the ratios "
            "less so (the brokers met the load alike, round after round); run again on a "
            "quiet machine before drawing conclusions.",
            "",
        ]
    lines += [
        "## Results",
        "",
        "Each broker's figure: the median over the rounds. *SASL / plain* above 1 for a "
        "latency, below 1 for a rate, is what authentication costs; then its range over the "
        "rounds.",
        "",
        "| Measure | SASL, devstack | SASL, throwaway | plain (throwaway) | SASL / plain, "
        "throwaway | range | SASL / plain, devstack | range |",
        "| --- | --: | --: | --: | --: | --: | --: | --: |",
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
        "| Round | Order | events/s: SASL devstack | SASL throwaway | plain | p99, ms: SASL "
        "devstack | SASL throwaway | plain |",
        "| --: | --- | --: | --: | --: | --: | --: | --: |",
        *(
            f"| {i + 1} | {', '.join(result.orders[i])} | "
            + " | ".join(f"{result.runs[v][i].throughput:,.0f}" for v in VARIANTS)
            + " | "
            + " | ".join(f"{result.runs[v][i].latency.p99:.1f}" for v in VARIANTS)
            + " |"
            for i in range(result.params.rounds)
        ),
        "",
        "## How it was measured",
        "",
        f"- Each run is the whole `outbox_pipeline` benchmark: fresh databases and topic, "
        f"{p.events:,} events pre-written then relayed and applied (throughput), then "
        f"{p.rate:,} events/s for {p.duration_s:g} s (latency, the first {p.warmup_s:g} s "
        f"discarded); relay batch {p.relay_batch}, consumer batch {p.consumer_batch}. Raw "
        "aiokafka is not run here.",
        "- **SASL, devstack**: the devstack's broker as `make infra-up` configures it "
        "(SASL_PLAINTEXT "
        "with SCRAM-SHA-256 on the client listener, the StandardAuthorizer denying what no ACL "
        f"allows). The relay connects as `{RELAY_PRINCIPAL}`, the consumer as "
        f"`{CONSUMER_PRINCIPAL}`, each allowed by literal ACLs on this run's topic, consumer "
        "group and dead-letter topic only (granted by the admin before the run, deleted "
        "after): what the services do, so the authorizer checks every request against ACLs.",
        "- **SASL, throwaway**: a single-node KRaft broker started by the benchmark "
        "(`bench/plain_kafka.py`) with the devstack's `server.properties` (SASL, the "
        "authorizer) on free ports of 127.0.0.1, its storage formatted with SCRAM users of "
        "its own (an admin and the two principals, random passwords); the same ACLs. It "
        "serves only this benchmark, like the plain one: the pair measures authentication "
        "alone.",
        "- **plain**: a single-node KRaft broker started by the benchmark "
        "(`bench/plain_kafka.py`) from the same cached jars, JVM options and "
        "`server.properties` as the devstack's "
        "(`deploy/devstack/slipway_devstack/kafka.py`), minus every "
        "authentication and authorization setting, PLAINTEXT listeners on 127.0.0.1 only; "
        "stopped and its directory deleted at the end. No principal, no authorizer.",
        f"- A warm-up per broker before the rounds, not counted (the throwaway brokers' JVMs "
        f"start cold): {result.params.warmup_raw:,} messages and {result.params.warmup_s:g} s "
        f"at {p.rate:,}/s through raw aiokafka, then a pipeline run of "
        f"{result.params.warmup_events:,} events and 3 s of latency. "
        "Then the rounds, the order rotating (*Order*), so that a slow spell of the "
        "machine hits every broker.",
        "- The devstack's broker also serves whatever else uses the devstack meanwhile (other "
        "tests or benchmarks): its *Kafka's CPU* counts all its users; the throwaway brokers "
        "serve only this benchmark. PostgreSQL is the devstack's for all three.",
        "",
        *machine_section(
            result.facts
            | {
                "Other work during the rounds": result.other.describe(),
                "Load average (1 min)": f"{result.load[0]:.2f} before the run, "
                f"{result.load[1]:.2f} at its end",
            }
        ),
    ]
    return "\n".join(lines)
