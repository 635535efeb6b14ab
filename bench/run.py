"""Run every benchmark against the devstack; each writes its table to ``bench/results/``.

    .venv/bin/python bench/run.py [--events 50000] [--duration 15] ...

Exits 0 whenever the benchmarks ran, targets met or not (benchmarks report, tests assert);
1 when one of them could not run at all.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path

import builder_overhead
import deploy_overhead
import gateway
import gateway_authz
import kafka_sasl
import kubernetes
import logs_follow
import logs_ingest
import outbox_pipeline
import raw_kafka
import report
import scheduler
import upstream_client
from support import Devstack, load_devstack, machine_facts, other_work, quiet_logging

RESULTS = Path(__file__).resolve().parent / "results"

Benchmark = Callable[[Devstack, argparse.Namespace], Awaitable[str]]


def pipeline_params(
    args: argparse.Namespace, events: int, duration_s: float
) -> outbox_pipeline.Params:
    """The pipeline's settings from the command line; the two benchmarks differ in their size."""
    return outbox_pipeline.Params(
        events=events,
        rate=args.rate,
        duration_s=duration_s,
        relay_batch=args.relay_batch,
        consumer_batch=args.consumer_batch,
        batch_handler=not args.per_event_handler,
    )


async def outbox_pipeline_benchmark(devstack: Devstack, args: argparse.Namespace) -> str:
    """The outbox pipeline end to end, then the raw aiokafka ceiling, on the same broker."""
    params = pipeline_params(args, args.events, args.duration)
    print(
        f"outbox_pipeline: pipeline ({params.events:,} events, then "
        f"{params.rate:,}/s for {params.duration_s:g} s)...",
        flush=True,
    )
    async with other_work(devstack) as other:
        pipeline = await outbox_pipeline.run(devstack, params)
        print("outbox_pipeline: raw aiokafka ceiling...", flush=True)
        raw = await raw_kafka.run(devstack, params, pipeline.payload_bytes)
    facts = machine_facts(devstack, pipeline.postgres_version)
    facts["Other work during the run"] = other.describe()
    return report.outbox_pipeline(params, pipeline, raw, facts, other.share)


async def kafka_sasl_benchmark(devstack: Devstack, args: argparse.Namespace) -> str:
    """The outbox pipeline on SASL/SCRAM brokers (the devstack's, a fresh one) and a plain one."""
    pipeline = pipeline_params(args, args.sasl_events, args.sasl_duration)
    params = kafka_sasl.Params(rounds=args.sasl_rounds, pipeline=pipeline)
    print(
        f"kafka_sasl: {params.rounds} rounds of the pipeline ({pipeline.events:,} events, then "
        f"{pipeline.rate:,}/s for {pipeline.duration_s:g} s) per broker (devstack SASL, throwaway "
        "SASL, plain)...",
        flush=True,
    )
    return kafka_sasl.render(await kafka_sasl.run(devstack, params))


async def gateway_authz_benchmark(devstack: Devstack, args: argparse.Namespace) -> str:
    """Gateway authorization overhead (identity and two gateways as real processes)."""
    print("gateway_authz: identity + two gateways...", flush=True)
    return await gateway_authz.run(devstack=devstack)


async def gateway_benchmark(devstack: Devstack, args: argparse.Namespace) -> str:
    """Issue 15: an authorized read and a deploy request through the gateway against the
    service behind it alone, at concurrency 1, 8 and 64 (CPU per request per process)."""
    params = gateway.Params(rounds=args.gateway_rounds, deploy=not args.gateway_no_deploy)
    print(f"gateway: {params.rounds} rounds, kinds {', '.join(params.kinds)}...", flush=True)
    return await gateway.run(params, devstack)


async def builder_overhead_benchmark(devstack: Devstack, args: argparse.Namespace) -> str:
    """The builder versus the same clone + buildah build + push run directly."""
    print("builder_overhead: direct vs builder builds...", flush=True)
    return await builder_overhead.run()


async def deploy_overhead_benchmark(devstack: Devstack, args: argparse.Namespace) -> str:
    """The deployer's control-plane overhead, N environments deployed at once."""
    params = deploy_overhead.Params(
        container_envs=args.deploy_envs,
        plane_envs=args.deploy_plane_envs,
        max_containers=args.deploy_max_containers,
    )
    print(
        f"deploy_overhead: containers {params.container_envs}, "
        f"control plane only {params.plane_envs}...",
        flush=True,
    )
    return await deploy_overhead.run(devstack, params)


async def logs_benchmark(devstack: Devstack, args: argparse.Namespace) -> str:
    """The logs service's ingest against a plain COPY of the same lines, then its follow
    (produce → follower latency; 500 followers with one stalled) through the gateway."""
    print("logs: ingest vs COPY...", flush=True)
    ingest = await logs_ingest.run(devstack=devstack)
    return f"{ingest.rstrip()}\n\n{await logs_follow.run(devstack)}"


async def scheduler_benchmark(devstack: Devstack, args: argparse.Namespace) -> str:
    """The scheduler's timers: a burst and a steady flow over 100,000 scheduled timers."""
    params = scheduler.Params(timers=args.scheduler_timers, spread_s=args.scheduler_spread)
    print(f"scheduler: {params.timers:,} timers (burst, then over {params.spread_s:g} s)...")
    return await scheduler.run(devstack, params)


async def kubernetes_benchmark(devstack: Devstack, args: argparse.Namespace) -> str:
    """N environments of 3 services deployed at once on the devstack's Kubernetes, and the API
    requests per deployed service against a naive apply-and-poll loop (same run)."""
    params = kubernetes.Params(envs=args.kube_envs, naive_services=args.kube_naive)
    print(f"kubernetes: {params.envs} environments, naive {params.naive_services}...", flush=True)
    return await kubernetes.run(devstack, params)


async def upstream_client_benchmark(devstack: Devstack, args: argparse.Namespace) -> str:
    """The gateway's forwarding client alone against aiohttp, CPU per request (same run)."""
    print("upstream_client: UpstreamPool vs aiohttp, rounds A B B A...", flush=True)
    return await upstream_client.run()


BENCHMARKS: dict[str, Benchmark] = {
    "outbox_pipeline": outbox_pipeline_benchmark,
    "kafka_sasl": kafka_sasl_benchmark,
    "gateway_authz": gateway_authz_benchmark,
    "gateway": gateway_benchmark,
    "upstream_client": upstream_client_benchmark,
    "builder_overhead": builder_overhead_benchmark,
    "deploy_overhead": deploy_overhead_benchmark,
    "logs": logs_benchmark,
    "scheduler": scheduler_benchmark,
    "kubernetes": kubernetes_benchmark,
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(BENCHMARKS), action="append")
    parser.add_argument("--events", type=int, default=50_000, help="throughput run size")
    parser.add_argument("--rate", type=int, default=1_000, help="latency run, events/s")
    parser.add_argument("--duration", type=float, default=15.0, help="latency run, seconds")
    parser.add_argument("--relay-batch", type=int, default=500)
    parser.add_argument("--consumer-batch", type=int, default=500)
    parser.add_argument(
        "--per-event-handler",
        action="store_true",
        help="outbox pipeline: one INSERT per event instead of a batch handler",
    )
    sasl = kafka_sasl.Params()
    parser.add_argument(
        "--sasl-rounds",
        type=int,
        default=sasl.rounds,
        help="kafka_sasl: rounds, each one pipeline run per broker (devstack, SASL, plain)",
    )
    parser.add_argument("--sasl-events", type=int, default=sasl.pipeline.events)
    parser.add_argument("--sasl-duration", type=float, default=sasl.pipeline.duration_s)
    deploy = deploy_overhead.Params()
    parser.add_argument(
        "--deploy-envs",
        type=deploy_overhead.sizes,
        default=deploy.container_envs,
        help="deploy overhead: environments with a container, per round (e.g. 10,100,1000)",
    )
    parser.add_argument(
        "--deploy-plane-envs",
        type=deploy_overhead.sizes,
        default=deploy.plane_envs,
        help="deploy overhead: environments with nothing to start (control plane only)",
    )
    parser.add_argument(
        "--deploy-max-containers",
        type=int,
        default=deploy.max_containers,
        help="deploy overhead: a container round above this is reported as not run",
    )
    parser.add_argument("--scheduler-timers", type=int, default=scheduler.Params.timers)
    parser.add_argument(
        "--scheduler-spread",
        type=float,
        default=scheduler.Params.spread_s,
        help="scheduler: seconds over which the steady run's timers fall due",
    )
    parser.add_argument("--kube-envs", type=int, default=kubernetes.Params.envs)
    parser.add_argument(
        "--kube-naive",
        type=int,
        default=kubernetes.Params.naive_services,
        help="kubernetes: services deployed by the naive apply-and-poll baseline",
    )
    parser.add_argument("--gateway-rounds", type=int, default=gateway.Params.rounds)
    parser.add_argument(
        "--gateway-no-deploy", action="store_true", help="gateway: reads only (identity alone)"
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the tables go")
    parser.add_argument("--verbose", action="store_true", help="keep INFO logs")
    return parser.parse_args()


async def main(args: argparse.Namespace) -> int:
    devstack = load_devstack()
    # SIGTERM cancels like Ctrl-C does, so the databases and topics are still cleaned up
    this = asyncio.current_task()
    assert this is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, this.cancel)
    failed = []
    for name in args.only or BENCHMARKS:
        try:
            table = await BENCHMARKS[name](devstack, args)
        except Exception:
            print(f"{name}: could not run:\n{traceback.format_exc()}", file=sys.stderr)
            failed.append(name)
            continue
        args.results.mkdir(parents=True, exist_ok=True)
        path = args.results / f"{name}.md"
        path.write_text(table)
        print(f"\n{table}\n(written to {path})", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.verbose:
        os.environ["SLIPWAY_BENCH_VERBOSE"] = "1"  # inherited by the worker processes
    quiet_logging(arguments.verbose)
    try:
        sys.exit(asyncio.run(main(arguments)))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted: benchmark resources cleaned up", file=sys.stderr)
        sys.exit(130)
