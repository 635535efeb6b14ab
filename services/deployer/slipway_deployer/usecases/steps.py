"""The steps a deployment takes on one service, by kind, and what they share: the tools of the
composition root, the failure with a stable reason, the variables a service receives."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Mapping
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from slipway_contracts.events import deployer as ev
from slipway_contracts.variables import DatabaseConnectionInfo
from slipway_deployer.adapters.live_logs import LiveLogs
from slipway_deployer.adapters.runtime import (
    ChartRelease,
    Charts,
    GitAccess,
    PacedByCluster,
    RunStatus,
    RuntimeFailure,
)
from slipway_deployer.adapters.runtime.registry import Placement, Runtimes
from slipway_deployer.adapters.signals import Signals
from slipway_deployer.config import DeployerSettings
from slipway_deployer.db import queries as q
from slipway_deployer.domain import plan as p
from slipway_deployer.domain.deployments import Deployment
from slipway_deployer.domain.running import DatabaseInstance
from slipway_deployer.usecases import git_credentials, progress, workloads
from slipway_libs import outbox
from slipway_libs.crypto import Sealer
from slipway_libs.db import transaction


class StepFailed(Exception):
    def __init__(self, reason: str, message: str, *, build: bool = False) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason, self.message, self.build = reason, message, build


@dataclass
class Tools:
    """What every execution uses (built once by the composition root)."""

    pool: asyncpg.Pool
    settings: DeployerSettings
    # the environment's cluster chooses the runtime (``placement``): the execution knows only
    # the ports, never which runtime it drives
    runtimes: Runtimes
    transport: Sealer
    at_rest: Sealer
    signals: Signals
    live: LiveLogs
    # starting processes costs this machine's CPU: a few at a time across every deployment, so
    # that a hundred deployments at once do not starve the deployer's own loop
    runtime_slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(4))

    @contextlib.asynccontextmanager
    async def slot(self, waited: list[float], starter: object = None) -> AsyncIterator[None]:
        """A runtime slot for a start by ``starter`` (the runtime or databases that start it);
        the time spent waiting for it is appended to ``waited``. A starter that paces itself
        (a cluster's runtime: ``PacedByCluster``) takes none: its slots are its own, held only
        while it applies, never while it watches a rollout."""
        if isinstance(starter, PacedByCluster):
            yield
            return
        asked = time.monotonic()
        async with self.runtime_slots:
            waited.append(time.monotonic() - asked)
            yield


@dataclass(frozen=True)
class Outcome:
    running_status: str | None
    urls: list[str]
    summary: str
    waited_s: float = 0.0  # for a runtime slot (the machine busy starting others)


async def placement(tools: Tools, environment_id: uuid.UUID) -> Placement:
    """Where the environment's services run: its cluster's runtime, reached now, or StepFailed
    (``CLUSTER_UNREACHABLE``...): never another runtime. The cluster's event travels on its own
    topic: one not projected yet is waited for a moment (``catalog_wait_s``)."""
    deadline = time.monotonic() + tools.settings.catalog_wait_s
    while True:
        async with tools.pool.acquire() as conn:
            cluster_id, cluster = await q.environment_cluster(conn, environment_id)
        if cluster is not None or time.monotonic() >= deadline:
            break
        await asyncio.sleep(tools.settings.poll_s)
    try:
        return await tools.runtimes.placement(cluster_id, cluster)
    except RuntimeFailure as failure:
        raise StepFailed(failure.reason.value, failure.message) from None


async def service_env(
    tools: Tools, snapshot: Mapping[str, Any], item: p.ServiceItem, outputs: Mapping[str, str]
) -> workloads.Delivery:
    """The variables one service receives now: its snapshot's, the environment's databases'
    connections, and the job outputs of earlier stages."""
    async with tools.pool.acquire() as conn:
        rows = await q.database_instances(conn, uuid.UUID(str(snapshot["environment"]["id"])))
    connections: dict[uuid.UUID, DatabaseConnectionInfo] = {
        row.service_id: workloads.connection_info(row, tools.at_rest) for row in rows
    }
    context = workloads.Context(snapshot, connections, outputs, tools.transport)
    try:
        return workloads.deliver(context, item)
    except ValueError as exc:  # a ResolutionError: the set changed since it was checked
        raise StepFailed("VARIABLES_INVALID", str(exc)) from None


async def within(timeout_s: float, message: str, work: Awaitable[Any]) -> Any:
    try:
        async with asyncio.timeout(timeout_s):
            return await work
    except TimeoutError:
        raise StepFailed("TIMEOUT", f"{message} within {timeout_s:.0f}s") from None


async def publish_connection(
    conn: asyncpg.Connection, row: DatabaseInstance, transport: Sealer, password: str
) -> None:
    sealed = base64.b64encode(transport.seal(password.encode(), aad=row.service_id.bytes)).decode()
    await outbox.publish(
        conn,
        ev.DatabaseConnectionChanged(
            service_id=row.service_id,
            environment_id=row.environment_id,
            organization_id=row.organization_id,
            engine=row.engine,
            host=row.host,
            port=row.port,
            user=row.db_user,
            database=row.db_name,
            password_sealed=sealed,
            version=row.version,
            deleted=row.deleted,
        ),
        subject=str(row.service_id),
        source=progress.SOURCE,
        organization_id=row.organization_id,
    )


def db_name(service_name: str) -> str:
    cleaned = "".join(c if c.isalnum() else "_" for c in service_name.lower()).strip("_")
    return (cleaned or "app")[:63]


async def start_service(
    tools: Tools,
    where: Placement,
    deployment: Deployment,
    item: p.ServiceItem,
    image: str,
    delivery: workloads.Delivery,
) -> Outcome:
    """An application or container: applied, healthy, followed."""
    work = workloads.workload(
        item,
        image=image,
        environment_id=deployment.environment_id,
        delivery=delivery,
        organization_id=deployment.organization_id,
    )
    waited: list[float] = []
    async with tools.slot(waited, where.runtime):
        deployed = await within(
            tools.settings.apply_timeout_s, f"{item.name} did not start", where.runtime.apply(work)
        )
    tools.live.follow_service(deployment, item.id, where.runtime)
    urls = [deployed.urls[port] for port in sorted(deployed.urls)]
    if deployed.url:
        urls = [deployed.url, *[u for u in urls if u != deployed.url]]
    summary = f"{image} at {', '.join(urls) or 'no port'}"
    return Outcome(RunStatus.RUNNING.value, urls, summary, sum(waited))


async def start_database(
    tools: Tools, where: Placement, deployment: Deployment, item: p.ServiceItem
) -> Outcome:
    """A database server on the environment's cluster; its connection kept (password sealed)
    and told to the catalog. On the local cluster the host's PostgreSQL major runs (the catalog
    offers no other there); elsewhere the version the service asks."""
    engine = str(item.spec.get("engine", ""))
    version = None if where.kind == "local" else item.spec.get("version")
    waited: list[float] = []
    async with tools.slot(waited, where.databases):
        connection = await within(
            tools.settings.apply_timeout_s,
            f"{item.name} did not start",
            where.databases.apply(
                str(item.id),
                engine=engine,
                version=version,
                name=db_name(item.name),
                environment_id=str(deployment.environment_id),
            ),
        )
    sealed = tools.at_rest.seal(connection.password.encode(), aad=item.id.bytes)
    async with transaction(tools.pool) as conn:
        row = await q.save_database_instance(
            conn,
            {
                "service_id": item.id,
                "organization_id": deployment.organization_id,
                "environment_id": deployment.environment_id,
                "engine": engine,
                "host": connection.host,
                "port": connection.port,
                "db_user": connection.user,
                "db_name": connection.database,
                "password_sealed": sealed,
            },
        )
        await publish_connection(conn, row, tools.transport, connection.password)
    tools.live.follow_database(deployment, item.id, where.databases)
    address = f"{connection.host}:{connection.port}"
    return Outcome(
        RunStatus.RUNNING.value,
        [f"postgresql://{address}/{connection.database}"],
        f"{engine} at {address}",
        sum(waited),
    )


def charts(where: Placement) -> Charts:
    """The environment's runtime's Helm releases; a runtime without them refuses Helm services."""
    if not isinstance(where.runtime, Charts):
        hint = "; use a Kubernetes cluster" if where.kind == "local" else ""
        message = f"the runtime of {where.describe()} does not run helm services{hint}"
        raise StepFailed("KIND_NOT_SUPPORTED", message)
    return where.runtime


async def install_chart(
    tools: Tools,
    where: Placement,
    deployment: Deployment,
    item: p.ServiceItem,
    delivery: workloads.Delivery,
) -> Outcome:
    """A Helm service: its chart installed or upgraded as one release, atomically, within the
    spec's timeout. The snapshot holds the chart's exact version and values, so deploying an
    older deployment's snapshot (a rollback) installs what it installed, as a new revision; a
    git chart's commit (the branch's head when first installed) is recorded there for that."""
    runtime = charts(where)
    spec = item.spec
    chart, git = await _chart_source(tools, deployment, item)
    release = ChartRelease(
        service_id=str(item.id),
        environment_id=str(deployment.environment_id),
        release_name=str(spec.get("release_name") or item.name),
        chart=chart,
        values_yaml=str(spec.get("values_yaml") or ""),
        set={k: str(v) for k, v in (spec.get("set") or {}).items()},
        set_string={k: str(v) for k, v in (spec.get("set_string") or {}).items()},
        env=delivery.env,
        timeout_s=float(spec.get("timeout_s", 600)),
        organization_id=str(deployment.organization_id),
        project_id=str(deployment.project_id),
        git=git,
    )
    waited: list[float] = []
    async with tools.slot(waited):
        state = await within(
            release.timeout_s + 60.0,  # helm's own --timeout ends it first, with its reason
            f"{item.name} was not installed",
            runtime.install_chart(release),
        )
    at = ""
    if state.commit is not None:
        at = f" at commit {state.commit[:12]}"
        if state.commit != chart.get("commit"):
            async with transaction(tools.pool) as conn:
                await q.snapshot_chart_commit(conn, deployment.id, item.id, state.commit)
    summary = f"chart {state.chart}{at} as release {state.name} revision {state.revision}"
    return Outcome(RunStatus.RUNNING.value, [], summary, sum(waited))


async def _chart_source(
    tools: Tools, deployment: Deployment, item: p.ServiceItem
) -> tuple[dict[str, Any], GitAccess]:
    """The chart to install: a git chart at the commit its snapshot recorded (a rollback, a
    resumed deployment), with the organization's git credential for its repository."""
    chart = dict(item.spec["chart"])
    if chart.get("source") != "git":
        return chart, GitAccess()
    recorded = (deployment.snapshot or {}).get("chart_commits", {}).get(str(item.id))
    if recorded:
        chart["commit"] = recorded
    async with tools.pool.acquire() as conn:
        git = await git_credentials.for_chart(
            conn, tools.transport, org_id=deployment.organization_id, url=str(chart.get("url"))
        )
    return chart, git


async def run_job(
    tools: Tools,
    where: Placement,
    deployment: Deployment,
    item: p.ServiceItem,
    image: str,
    delivery: workloads.Delivery,
    outputs: dict[str, str],
) -> Outcome:
    """A lifecycle job run to completion; its output file, when it declares one, becomes
    variables of later stages (added to ``outputs``, and kept sealed for later deployments)."""
    work = workloads.workload(
        item,
        image=image,
        environment_id=deployment.environment_id,
        delivery=delivery,
        organization_id=deployment.organization_id,
    )
    timeout_s = float(item.spec.get("max_duration_s", 3600))
    tools.live.follow_job(deployment, item.id, where.runtime)
    waited: list[float] = []
    job = asyncio.create_task(where.runtime.run_job(work, timeout_s=timeout_s))
    try:
        async with tools.slot(waited):  # the slot covers the start; a long job does not hold it
            await _started_or_done(job)
        result = await job
    except BaseException:
        job.cancel()  # a canceled deployment stops its job
        raise
    if result.exit_code != 0:
        raise StepFailed("JOB_FAILED", f"{item.name} exited with code {result.exit_code}")
    if item.spec.get("output_variables"):
        try:
            written = p.output_variables(result.output)
        except ValueError as exc:
            raise StepFailed("JOB_OUTPUT_INVALID", str(exc)) from None
        async with transaction(tools.pool) as conn:
            await q.save_job_outputs(
                conn,
                deployment.environment_id,
                item.id,
                workloads.seal_outputs(written, tools.at_rest, item.id),
            )
        outputs.update(written)
    summary = f"job done in {result.duration_s:.1f}s"
    return Outcome(RunStatus.COMPLETED.value, [], summary, sum(waited))


async def _started_or_done(job: asyncio.Task[Any], settle_s: float = 1.0) -> None:
    """Hold the slot while the job's process is being made (about a second), not its whole run."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(job), settle_s)
