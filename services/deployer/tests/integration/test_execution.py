"""The execution of a deployment (``usecases/execution.py``) with the runtime faked: stage order and
parallelism, a failing service, a cancel, a resume after a crash, a rollback.

The execution reads and writes its progress through the queries module itself, so the database is
the real PostgreSQL with the real migrations (a fresh database per test); only the runtime is the
in-memory fake of ``tests/unit/fakes.py``, so no process starts and each test takes a fraction of a
second. Requests are queued, claimed and canceled by the same use cases and queries the API and
the worker use; what the worker adds (its leadership, NOTIFY wake-ups) has its own tests.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

import asyncpg
import pytest

from services.deployer.tests.unit.fakes import FakeLiveLogs, FakeRuntime, NoDatabases
from slipway_deployer.adapters.live_logs import LiveLogs
from slipway_deployer.adapters.runtime import (
    ClusterAccess,
    Databases,
    FailureReason,
    RuntimeOpener,
)
from slipway_deployer.adapters.runtime.registry import Reach, Runtimes
from slipway_deployer.adapters.signals import Signals
from slipway_deployer.bootstrap import DEFINITION
from slipway_deployer.config import DeployerSettings
from slipway_deployer.db import queries
from slipway_deployer.domain.deployments import Deployment
from slipway_deployer.domain.state_machine import Action
from slipway_deployer.usecases import requests, steps
from slipway_deployer.usecases.execution import Execution
from slipway_libs import db
from slipway_libs.actor import SYSTEM
from slipway_libs.crypto import Sealer

pytestmark = pytest.mark.integration
KEYS = "test:" + base64.b64encode(bytes(range(32))).decode()
SETTINGS = DeployerSettings.model_validate(
    # a cluster the projection does not know is waited for this long
    {"database_url": "postgresql://unused", "SLIPWAY_DEPLOYER_TRANSPORT_KEYS": KEYS}
    | {"catalog_wait_s": 0.2}
)


@pytest.fixture
async def pool(database_factory: Any) -> AsyncIterator[asyncpg.Pool]:
    dsn = await database_factory("deployer", DEFINITION.migrations)
    pool = await db.create_pool(dsn, max_size=4)
    yield pool
    await pool.close()


@pytest.fixture
def runtime() -> FakeRuntime:
    return FakeRuntime()


async def reached(access: ClusterAccess) -> None:
    """Every self-managed cluster of these tests answers (``clusters`` tests say otherwise)."""
    return None


def tools_for(
    pool: asyncpg.Pool,
    runtime: FakeRuntime,
    *,
    reach: Reach = reached,
    opener: RuntimeOpener | None = None,
) -> steps.Tools:
    """The composition root's tools, the fake runtime as the local one (and ``opener``'s for
    self-managed clusters); a fresh set is a restarted deployer."""
    sealer = Sealer.from_setting(KEYS)
    runtimes = Runtimes(
        local_runtime=runtime,
        local_databases=cast(Databases, NoDatabases()),
        transport=sealer,
        reach=reach,
        opener=opener,
    )
    return steps.Tools(
        pool=pool,
        settings=SETTINGS,
        runtimes=runtimes,
        transport=sealer,
        at_rest=sealer,
        signals=Signals(),
        live=cast(LiveLogs, FakeLiveLogs()),
    )


# -- the deployer's copy of the catalog -----------------------------------------------------------


@dataclass
class Environment:
    id: uuid.UUID
    organization_id: uuid.UUID
    project_id: uuid.UUID
    services: dict[str, uuid.UUID] = field(default_factory=dict)  # by name
    versions: dict[str, int] = field(default_factory=dict)

    def image(self, tag: str, name: str = "web") -> str:
        return f"docker.io/{name}:{tag}"  # the image every service of these tests runs


def container(name: str, tag: str) -> dict[str, Any]:
    return {
        "image": {"name": "web", "tag": tag},
        "ports": [{"port": 8080, "default": True, "public": True}],
    }


async def environment(
    pool: asyncpg.Pool, stages: dict[str, list[str]], *, cluster: dict[str, Any] | None = None
) -> Environment:
    """An environment whose stages (in this order) hold these container services, on the
    organization's local cluster, or on ``cluster`` (a ``catalog_clusters`` row, its id and
    organization filled in; ``{"id": <uuid>}`` alone: a cluster the deployer never heard of)."""
    env = Environment(uuid.uuid4(), uuid.uuid4(), uuid.uuid4())
    cluster = dict(LOCAL_CLUSTER if cluster is None else cluster)
    cluster_id = cluster.setdefault("id", uuid.uuid4())
    async with pool.acquire() as conn, conn.transaction():
        if "kind" in cluster:
            await project_cluster(conn, cluster | {"organization_id": env.organization_id})
        await queries.project(
            conn,
            "catalog_environments",
            {
                "id": env.id,
                "organization_id": env.organization_id,
                "project_id": env.project_id,
                "name": "production",
                "mode": "PRODUCTION",
                "cluster_id": cluster_id,
                "deleted": False,
                "version": 1,
            },
        )
        for position, (stage, names) in enumerate(stages.items()):
            stage_id = uuid.uuid4()
            await queries.project(
                conn,
                "catalog_stages",
                {
                    "id": stage_id,
                    "organization_id": env.organization_id,
                    "environment_id": env.id,
                    "name": stage,
                    "position": position,
                    "deleted": False,
                    "version": 1,
                },
            )
            for name in names:
                env.services[name] = uuid.uuid4()
                await set_service(conn, env, name, stage_id=stage_id, tag="1")
    return env


LOCAL_CLUSTER: dict[str, Any] = {"name": "local", "kind": "local"}


async def project_cluster(conn: asyncpg.Connection, cluster: dict[str, Any]) -> None:
    """A cluster as the catalog's ClusterChanged would project it."""
    await queries.project(
        conn,
        "catalog_clusters",
        {
            "api_url": None,
            "credentials_sealed": None,
            "capabilities": None,
            "settings": None,
            "deleted": False,
            "version": 1,
            **cluster,
        },
    )


async def set_service(
    conn: asyncpg.Connection, env: Environment, name: str, *, stage_id: uuid.UUID, tag: str
) -> None:
    """A service's newer version, as the catalog's ServiceChanged would project it."""
    env.versions[name] = env.versions.get(name, 0) + 1
    await queries.project(
        conn,
        "catalog_services",
        {
            "id": env.services[name],
            "organization_id": env.organization_id,
            "project_id": env.project_id,
            "environment_id": env.id,
            "name": name,
            "kind": "container",
            "spec": container(name, tag),
            "stage_id": stage_id,
            "deleted": False,
            "version": env.versions[name],
        },
    )


# -- requests, as the API queues them and the worker claims them ----------------------------------


async def queue(pool: asyncpg.Pool, env: Environment) -> uuid.UUID:
    async with pool.acquire() as conn, conn.transaction():
        row, merged = await requests.request(
            conn, environment_id=env.id, action=Action.DEPLOY, actor=SYSTEM
        )
    assert not merged
    return row.id


async def claim(pool: asyncpg.Pool, deployment_id: uuid.UUID) -> Deployment:
    async with pool.acquire() as conn:
        claimed = await queries.claim(conn, 10)
    assert [row.id for row in claimed] == [deployment_id]
    return claimed[0]


async def deploy(pool: asyncpg.Pool, runtime: FakeRuntime, env: Environment) -> Deployment:
    """Queue a deployment, claim it and run it to its end."""
    claimed = await claim(pool, await queue(pool, env))
    await Execution(tools_for(pool, runtime), claimed).run()
    return await deployment(pool, claimed.id)


# -- what the API would show ----------------------------------------------------------------------


async def deployment(pool: asyncpg.Pool, deployment_id: uuid.UUID) -> Deployment:
    async with pool.acquire() as conn:
        row = await queries.deployment(conn, deployment_id)
    assert row is not None
    return row


async def stages(pool: asyncpg.Pool, deployment_id: uuid.UUID) -> dict[str, str]:
    async with pool.acquire() as conn:
        return {s.name: s.status for s in await queries.stages(conn, deployment_id)}


async def runs(pool: asyncpg.Pool, deployment_id: uuid.UUID) -> dict[str, str]:
    async with pool.acquire() as conn:
        return {r.name: r.status for r in await queries.service_runs(conn, deployment_id)}


async def environment_state(pool: asyncpg.Pool, env: Environment) -> str:
    async with pool.acquire() as conn:
        row = await queries.environment_status(conn, env.id)
    assert row is not None
    return row.state


async def service_state(pool: asyncpg.Pool, env: Environment, name: str) -> str:
    async with pool.acquire() as conn:
        row = await queries.service_status(conn, env.services[name])
    assert row is not None
    return row.state


async def until(condition: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        if loop.time() > deadline:
            pytest.fail(f"{what} within {timeout_s:g} s")
        await asyncio.sleep(0.005)


async def until_async(
    read: Callable[[], Awaitable[object]], expected: object, what: str, timeout_s: float = 10.0
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while (seen := await read()) != expected:
        if loop.time() > deadline:
            pytest.fail(f"{what} within {timeout_s:g} s (still {seen!r})")
        await asyncio.sleep(0.005)


async def run_status(pool: asyncpg.Pool, deployment_id: uuid.UUID, name: str) -> str:
    return (await runs(pool, deployment_id))[name]


def ids(env: Environment, *names: str) -> set[str]:
    return {str(env.services[name]) for name in names}


# -- the tests ------------------------------------------------------------------------------------


async def test_stages_run_in_order_and_the_services_of_a_stage_together(
    pool: asyncpg.Pool, runtime: FakeRuntime
) -> None:
    env = await environment(pool, {"data": ["cache", "queue"], "apps": ["api"], "edge": ["web"]})
    runtime.hold(env.services["cache"])
    runtime.hold(env.services["queue"])
    claimed = await claim(pool, await queue(pool, env))
    running = asyncio.create_task(Execution(tools_for(pool, runtime), claimed).run())

    # both services of the first stage are being applied at once, and nothing of the next stage
    await until(lambda: runtime.applying == ids(env, "cache", "queue"), "the first stage together")
    assert runtime.applied(env.services["api"]) == []
    runtime.release(env.services["cache"])
    runtime.release(env.services["queue"])
    await running

    last_end = {sid: i for i, (event, sid) in enumerate(runtime.timeline) if event == "end"}
    start = {sid: i for i, (event, sid) in enumerate(runtime.timeline) if event == "start"}
    api, web = str(env.services["api"]), str(env.services["web"])
    assert max(last_end[s] for s in ids(env, "cache", "queue")) < start[api] < last_end[api]
    assert last_end[api] < start[web]

    done = await deployment(pool, claimed.id)
    assert (done.status, done.reason) == ("SUCCESS", None)
    assert await stages(pool, claimed.id) == {"data": "DONE", "apps": "DONE", "edge": "DONE"}
    assert set((await runs(pool, claimed.id)).values()) == {"DONE"}
    assert await environment_state(pool, env) == "DEPLOYED"
    assert runtime.running() == {str(sid): env.image("1") for sid in env.services.values()}


async def test_a_failing_service_fails_its_stage_and_skips_the_later_ones(
    pool: asyncpg.Pool, runtime: FakeRuntime
) -> None:
    env = await environment(pool, {"first": ["db"], "second": ["api"], "third": ["web"]})
    runtime.fail(env.services["api"], FailureReason.HEALTHCHECK_FAILED, "no answer on /health")

    done = await deploy(pool, runtime, env)

    assert done.status == "ERROR"
    assert done.reason == "HEALTHCHECK_FAILED"
    assert "no answer on /health" in done.message
    assert await stages(pool, done.id) == {
        "first": "DONE",
        "second": "ERROR",
        "third": "SKIPPED",
    }
    assert await runs(pool, done.id) == {"db": "DONE", "api": "ERROR", "web": "SKIPPED"}
    assert runtime.applied(env.services["web"]) == []  # a skipped stage is not started
    assert await environment_state(pool, env) == "DEPLOYMENT_ERROR"
    assert await service_state(pool, env, "api") == "DEPLOYMENT_ERROR"
    assert await service_state(pool, env, "db") == "DEPLOYED"


async def test_a_cancel_during_a_stage_stops_it_and_cancels_the_rest(
    pool: asyncpg.Pool, runtime: FakeRuntime
) -> None:
    env = await environment(pool, {"first": ["db"], "second": ["api"], "third": ["web"]})
    runtime.hold(env.services["api"])  # a slow rollout, canceled in the middle
    claimed = await claim(pool, await queue(pool, env))
    execution = Execution(tools_for(pool, runtime), claimed)
    running = asyncio.create_task(execution.run())
    await until(lambda: runtime.applying == ids(env, "api"), "the second stage applying")

    async with pool.acquire() as conn, conn.transaction():
        canceling = await requests.cancel(conn, env.id, SYSTEM)
    assert (canceling.id, canceling.status) == (claimed.id, "CANCELING")
    # what the worker does on the cancel's NOTIFY (worker._on_cancel)
    execution.canceling = True
    running.cancel()
    await running

    done = await deployment(pool, claimed.id)
    assert (done.status, done.reason) == ("CANCELED", "CANCELED")
    assert await stages(pool, done.id) == {
        "first": "DONE",
        "second": "CANCELED",
        "third": "CANCELED",
    }
    assert await runs(pool, done.id) == {"db": "DONE", "api": "CANCELED", "web": "CANCELED"}
    assert runtime.applying == set()  # the apply in flight was stopped
    assert runtime.applied(env.services["web"]) == []
    # what was deployed before the cancel stays
    assert runtime.running() == {str(env.services["db"]): env.image("1")}
    assert await environment_state(pool, env) == "CANCELED"
    assert await service_state(pool, env, "db") == "DEPLOYED"


async def test_a_deployment_resumed_after_a_crash_finishes_without_applying_twice(
    pool: asyncpg.Pool, runtime: FakeRuntime
) -> None:
    env = await environment(pool, {"first": ["db"], "second": ["api", "worker"], "third": ["web"]})
    runtime.hold(env.services["api"])
    claimed = await claim(pool, await queue(pool, env))
    running = asyncio.create_task(Execution(tools_for(pool, runtime), claimed).run())
    # the crash comes with the second stage half done: worker DONE, api still applying
    await until(lambda: runtime.applying == ids(env, "api"), "the second stage applying")
    await until_async(lambda: run_status(pool, claimed.id, "worker"), "DONE", "the worker deployed")
    # the deployer stops mid-stage (not a cancel): nothing more is written, as when it is killed
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert (await deployment(pool, claimed.id)).status == "ONGOING"
    assert (await stages(pool, claimed.id))["first"] == "DONE"
    runtime.release(env.services["api"])

    # a deployer started again resumes what it finds unfinished (worker._take_over)
    async with pool.acquire() as conn:
        unfinished = [row for row in await queries.unfinished(conn) if row.id == claimed.id]
    assert len(unfinished) == 1
    await Execution(tools_for(pool, runtime), unfinished[0]).run()

    done = await deployment(pool, claimed.id)
    assert done.status == "SUCCESS"
    assert await stages(pool, done.id) == {"first": "DONE", "second": "DONE", "third": "DONE"}
    # done, in a stage done or half done: not touched again
    assert runtime.applied(env.services["db"]) == [env.image("1")]
    assert runtime.applied(env.services["worker"]) == [env.image("1")]
    # caught mid-apply: applied again (apply replaces, so it runs once)
    assert runtime.applied(env.services["api"]) == [env.image("1")] * 2
    assert runtime.applied(env.services["web"]) == [env.image("1")]
    assert await environment_state(pool, env) == "DEPLOYED"


async def test_a_rollback_deploys_the_earlier_snapshot_again(
    pool: asyncpg.Pool, runtime: FakeRuntime
) -> None:
    env = await environment(pool, {"only": ["api", "web"]})
    first = await deploy(pool, runtime, env)
    assert first.status == "SUCCESS"
    async with pool.acquire() as conn, conn.transaction():
        stage_id = (await queries.stages(conn, first.id))[0].stage_id
        await set_service(conn, env, "api", stage_id=stage_id, tag="2")
    second = await deploy(pool, runtime, env)
    assert second.status == "SUCCESS"
    assert runtime.running()[str(env.services["api"])] == env.image("2")

    async with pool.acquire() as conn, conn.transaction():
        row, _ = await requests.rollback(conn, first.id, SYSTEM)
    claimed = await claim(pool, row.id)
    await Execution(tools_for(pool, runtime), claimed).run()

    done = await deployment(pool, claimed.id)
    assert (done.status, done.rollback_of) == ("SUCCESS", first.id)
    assert runtime.applied(env.services["api"]) == [env.image(t) for t in ("1", "2", "1")]
    assert runtime.running() == {str(sid): env.image("1") for sid in env.services.values()}
    assert await environment_state(pool, env) == "DEPLOYED"


async def test_a_cancel_that_came_while_the_deployer_was_down_ends_the_deployment_on_resume(
    pool: asyncpg.Pool, runtime: FakeRuntime
) -> None:
    env = await environment(pool, {"first": ["db"], "second": ["api"], "third": ["web"]})
    runtime.hold(env.services["api"])
    claimed = await claim(pool, await queue(pool, env))
    running = asyncio.create_task(Execution(tools_for(pool, runtime), claimed).run())
    await until(lambda: runtime.applying == ids(env, "api"), "the second stage applying")
    running.cancel()  # the deployer stops mid-stage
    with pytest.raises(asyncio.CancelledError):
        await running
    async with pool.acquire() as conn, conn.transaction():
        await requests.cancel(conn, env.id, SYSTEM)  # no worker hears it: none runs
    runtime.release(env.services["api"])

    async with pool.acquire() as conn:
        row = next(r for r in await queries.unfinished(conn) if r.id == claimed.id)
    assert row.status == "CANCELING"
    await Execution(tools_for(pool, runtime), row, canceling=True).run()  # as worker._take_over

    done = await deployment(pool, claimed.id)
    assert (done.status, done.reason) == ("CANCELED", "CANCELED")
    assert await stages(pool, done.id) == {
        "first": "DONE",
        "second": "CANCELED",
        "third": "CANCELED",
    }
    assert runtime.applied(env.services["api"]) == [env.image("1")]  # not applied again
    assert runtime.applied(env.services["web"]) == []
    assert await environment_state(pool, env) == "CANCELED"
