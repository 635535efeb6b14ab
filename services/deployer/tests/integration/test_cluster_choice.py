"""The environment's cluster chooses the runtime (issue 14, item 1): the execution against the real
PostgreSQL with the real migrations, the runtimes faked (``tests/unit/fakes.py``), the registry
(``adapters/runtime/registry.py``) real — credentials sealed with the transport key as the
catalog seals them, opened by the registry.

What must never happen: a self-managed environment deployed by the local runtime. A cluster that
cannot be used ends the deployment ERROR with ``CLUSTER_UNREACHABLE`` (or
``RUNTIME_NOT_AVAILABLE``), its message naming the cluster, and nothing applied anywhere.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from services.deployer.tests.integration.test_execution import (
    KEYS,
    Environment,
    claim,
    deployment,
    environment,
    environment_state,
    queue,
    runs,
    service_state,
    stages,
    tools_for,
)
from services.deployer.tests.unit.fakes import FakeRuntime, NoDatabases
from slipway_contracts import new_event
from slipway_contracts.events import catalog as ev
from slipway_deployer.adapters.runtime import (
    ChartRelease,
    ClusterAccess,
    Databases,
    FailureReason,
    ReleaseState,
    Runtime,
    RuntimeFailure,
)
from slipway_deployer.bootstrap import DEFINITION
from slipway_deployer.db import queries
from slipway_deployer.domain.state_machine import Action
from slipway_deployer.usecases import git_credentials, projection, requests
from slipway_deployer.usecases.execution import Execution
from slipway_libs import db
from slipway_libs.actor import SYSTEM
from slipway_libs.crypto import Sealer

pytestmark = pytest.mark.integration


@pytest.fixture
async def pool(database_factory: Any) -> AsyncIterator[asyncpg.Pool]:
    dsn = await database_factory("deployer", DEFINITION.migrations)
    pool = await db.create_pool(dsn, max_size=4)
    yield pool
    await pool.close()


TOKEN = "kube-token-never-logged"
API_URL = "https://k8s.example.com:6443"


def self_managed(name: str = "prod-eu", **access: Any) -> dict[str, Any]:
    """A self-managed cluster as the catalog's event projects it: the access sealed with the
    transport key, bound to the cluster's id."""
    cluster_id = uuid.uuid4()
    clear = {"api_url": API_URL, "token": TOKEN, "ca_cert": None}
    sealed = Sealer.from_setting(KEYS).seal(
        json.dumps(clear | access).encode(), aad=cluster_id.bytes
    )
    return {
        "id": cluster_id,
        "name": name,
        "kind": "self_managed",
        "api_url": clear["api_url"],
        "credentials_sealed": base64.b64encode(sealed).decode(),
        "capabilities": {"kinds": ["container"]},
        "settings": {"ingress_class": "nginx"},
    }


class Opener:
    """The kubernetes runtime's stand-in: one fake runtime per cluster, and what it was given."""

    def __init__(self) -> None:
        self.runtime: FakeRuntime = FakeRuntime()
        self.given: list[ClusterAccess] = []

    async def __call__(self, access: ClusterAccess) -> tuple[Runtime, Databases]:
        self.given.append(access)
        return self.runtime, NoDatabases()  # type: ignore[return-value]


def refusing(why: str):  # type: ignore[no-untyped-def]
    async def reach(access: ClusterAccess) -> None:
        raise RuntimeFailure(FailureReason.CLUSTER_UNREACHABLE, why)

    return reach


async def failed_with(
    pool: asyncpg.Pool, env: Environment, done: Any, reason: str, *, local: FakeRuntime
) -> None:
    """Ended ERROR for ``reason`` before anything ran: every stage and service skipped."""
    assert (done.status, done.reason) == ("ERROR", reason), done.message
    assert set((await stages(pool, done.id)).values()) == {"SKIPPED"}
    assert set((await runs(pool, done.id)).values()) == {"SKIPPED"}
    assert await environment_state(pool, env) == "DEPLOYMENT_ERROR"
    assert local.calls == []  # the local runtime was never asked anything


async def test_the_cluster_chooses_the_runtime(pool: asyncpg.Pool) -> None:
    local, opener = FakeRuntime(), Opener()
    on_local = await environment(pool, {"apps": ["api"]})
    on_cluster = await environment(pool, {"apps": ["api", "web"]}, cluster=self_managed())

    for env in (on_local, on_cluster):
        done = await deploy_with(pool, env, tools_for(pool, local, opener=opener))
        assert done.status == "SUCCESS", done.message

    assert set(local.running()) == {str(on_local.services["api"])}
    assert set(opener.runtime.running()) == {str(s) for s in on_cluster.services.values()}
    [access] = opener.given  # opened once, from the sealed credentials
    assert (access.name, access.api_url, access.token) == ("prod-eu", API_URL, TOKEN)
    assert access.settings == {"ingress_class": "nginx"}
    assert TOKEN not in repr(access)


async def test_a_self_managed_environment_never_runs_locally_without_a_kubernetes_runtime(
    pool: asyncpg.Pool,
) -> None:
    local = FakeRuntime()
    env = await environment(pool, {"data": ["db"], "apps": ["api"]}, cluster=self_managed())

    done = await deploy_with(pool, env, tools_for(pool, local, opener=None))

    await failed_with(pool, env, done, "RUNTIME_NOT_AVAILABLE", local=local)
    assert "prod-eu" in done.message


async def test_an_unreachable_cluster_fails_the_deployment_naming_the_cluster(
    pool: asyncpg.Pool,
) -> None:
    local, opener = FakeRuntime(), Opener()
    env = await environment(pool, {"apps": ["api"]}, cluster=self_managed("prod-us"))
    tools = tools_for(
        pool, local, reach=refusing("its API server could not be reached"), opener=opener
    )

    done = await deploy_with(pool, env, tools)

    await failed_with(pool, env, done, "CLUSTER_UNREACHABLE", local=local)
    assert "prod-us" in done.message and "could not be reached" in done.message
    assert opener.given == []  # no runtime made for a cluster that does not answer


@pytest.mark.parametrize(
    ("cluster", "says"),
    [
        ({"id": uuid.uuid4()}, "is not known to the deployer"),  # never told by the catalog
        ({**self_managed(), "deleted": True}, "it was deleted"),
        ({**self_managed(), "credentials_sealed": None}, "never given its credentials"),
        ({**self_managed(), "credentials_sealed": "bm90IHNlYWxlZA=="}, "could not be opened"),
    ],
    ids=["unknown", "deleted", "no-credentials", "credentials-not-ours"],
)
async def test_a_cluster_that_cannot_be_used_is_unreachable(
    pool: asyncpg.Pool, cluster: dict[str, Any], says: str
) -> None:
    local, opener = FakeRuntime(), Opener()
    env = await environment(pool, {"apps": ["api"]}, cluster=cluster)

    done = await deploy_with(pool, env, tools_for(pool, local, opener=opener))

    await failed_with(pool, env, done, "CLUSTER_UNREACHABLE", local=local)
    assert says in done.message
    assert opener.runtime.calls == []


async def test_a_cluster_lost_mid_deployment_fails_it_and_skips_the_rest(
    pool: asyncpg.Pool,
) -> None:
    local, opener = FakeRuntime(), Opener()
    env = await environment(
        pool, {"first": ["db"], "second": ["api"], "third": ["web"]}, cluster=self_managed()
    )
    opener.runtime.fail(
        env.services["api"], FailureReason.CLUSTER_UNREACHABLE, "connection refused"
    )

    done = await deploy_with(pool, env, tools_for(pool, local, opener=opener))

    assert (done.status, done.reason) == ("ERROR", "CLUSTER_UNREACHABLE")
    assert "prod-eu" in done.message and "connection refused" in done.message
    assert await stages(pool, done.id) == {"first": "DONE", "second": "ERROR", "third": "SKIPPED"}
    assert opener.runtime.applied(env.services["web"]) == []
    assert local.calls == []


async def deploy_with(pool: asyncpg.Pool, env: Environment, tools: Any) -> Any:
    """Queue a deployment, claim it and run it to its end with these tools (their runtimes)."""
    claimed = await claim(pool, await queue(pool, env))
    await Execution(tools, claimed).run()
    return await deployment(pool, claimed.id)


async def test_the_catalog_s_cluster_event_is_what_the_registry_opens(pool: asyncpg.Pool) -> None:
    """ClusterChanged through the projection's own handler: the sealed access, capabilities and
    settings kept as the catalog sent them (an older event without them changes nothing)."""
    row = self_managed("prod-ap")
    org = uuid.uuid4()
    changed = ev.ClusterChanged(
        cluster_id=row["id"],
        organization_id=org,
        name=row["name"],
        kind="self_managed",
        api_url=API_URL,
        version=2,
        credentials_sealed=row["credentials_sealed"],
        capabilities=row["capabilities"],
        settings=row["settings"],
    )
    stale = changed.model_copy(update={"version": 1, "credentials_sealed": None})
    async with pool.acquire() as conn, conn.transaction():
        for payload in (changed, stale):
            envelope = new_event(
                payload, subject=str(row["id"]), source="catalog", organization_id=org
            )
            await projection.apply(conn, envelope)
        await queries.project(
            conn,
            "catalog_environments",
            {
                "id": (env_id := uuid.uuid4()),
                "organization_id": org,
                "project_id": uuid.uuid4(),
                "name": "ap",
                "mode": "PRODUCTION",
                "cluster_id": row["id"],
                "deleted": False,
                "version": 1,
            },
        )
        cluster_id, cluster = await queries.environment_cluster(conn, env_id)
    assert cluster is not None and cluster_id == row["id"]
    assert (cluster.version, cluster.settings) == (2, {"ingress_class": "nginx"})
    assert row["credentials_sealed"] not in repr(cluster)

    opener = Opener()
    where = await tools_for(pool, FakeRuntime(), opener=opener).runtimes.placement(
        cluster_id, cluster
    )
    assert (where.kind, where.runtime) == ("self_managed", opener.runtime)
    assert opener.given[0].token == TOKEN


class NamespacedRuntime(FakeRuntime):
    """A fake runtime with a place per environment, as the kubernetes one (a namespace)."""

    def __init__(self) -> None:
        super().__init__()
        self.environments_deleted: list[str] = []
        self.deployments_begun: list[str] = []

    async def delete_environment(self, environment_id: str) -> None:
        self.environments_deleted.append(environment_id)

    def begin_deployment(self, environment_id: str) -> None:
        self.deployments_begun.append(environment_id)


async def test_deleting_the_environment_removes_its_place_on_the_cluster(
    pool: asyncpg.Pool,
) -> None:
    local, opener = FakeRuntime(), Opener()
    opener.runtime = NamespacedRuntime()
    env = await environment(pool, {"apps": ["api", "web"]}, cluster=self_managed())
    tools = tools_for(pool, local, opener=opener)
    assert (await deploy_with(pool, env, tools)).status == "SUCCESS"

    async with pool.acquire() as conn, conn.transaction():
        row, _ = await requests.request(
            conn, environment_id=env.id, action=Action.DELETE, actor=SYSTEM
        )
    claimed = await claim(pool, row.id)
    await Execution(tools, claimed).run()

    done = await deployment(pool, claimed.id)
    assert done.status == "SUCCESS", done.message
    assert opener.runtime.running() == {}  # each service deleted, then the namespace
    assert opener.runtime.environments_deleted == [str(env.id)]
    # the deploy and the delete each began once for the environment, not once per service
    assert opener.runtime.deployments_begun == [str(env.id)] * 2
    assert local.calls == []


class ChartingRuntime(NamespacedRuntime):
    """A fake runtime that also installs Helm charts (the ``Charts`` port), as the kubernetes one:
    what it was given, and a failure for a chart named ``broken``; a git chart is installed at
    the commit it names, else at ``head`` (its branch's head)."""

    def __init__(self) -> None:
        super().__init__()
        self.releases: list[ChartRelease] = []
        self.chart_calls: list[tuple[str, str, str]] = []
        self.head = "1" * 40

    async def install_chart(self, release: ChartRelease) -> ReleaseState:
        if release.chart.get("name") == "broken":
            raise RuntimeFailure(FailureReason.HELM_FAILED, "helm upgrade: Error: selector")
        self.releases.append(release)
        revision = len(self.releases)
        git = release.chart.get("source") == "git"
        commit = str(release.chart.get("commit") or self.head) if git else None
        return ReleaseState(
            release.release_name, "ns", revision, "deployed", "web-0.1.0", commit=commit
        )

    async def uninstall_chart(self, environment_id: str, release_name: str) -> None:
        self.chart_calls.append(("uninstall", environment_id, release_name))

    async def stop_chart(self, environment_id: str, release_name: str) -> None:
        self.chart_calls.append(("stop", environment_id, release_name))

    async def restart_chart(self, environment_id: str, release_name: str) -> None:
        self.chart_calls.append(("restart", environment_id, release_name))

    async def chart_status(self, environment_id: str, release_name: str) -> ReleaseState | None:
        return None


async def as_helm(
    pool: asyncpg.Pool,
    env: Environment,
    name: str,
    chart: str = "web",
    source: dict[str, Any] | None = None,
) -> None:
    """The service re-projected as a Helm service (the catalog's helm spec), its chart from the
    registry, or ``source``."""
    spec = {
        "chart": source
        or {
            "source": "repository",
            "repository_url": "oci://127.0.0.1:15000/charts",
            "name": chart,
            "version": "0.1.0",
        },
        "values_yaml": "greeting: hello\n",
        "set": {"replicas": "2"},
        "release_name": f"{name}-release",
        "timeout_s": 120,
    }
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE catalog_services SET kind = 'helm', spec = $2::jsonb, version = version + 1"
            " WHERE id = $1",
            env.services[name],
            spec,  # the pool's codec encodes JSON
        )


async def test_a_helm_service_is_installed_by_the_cluster_s_runtime_and_uninstalled(
    pool: asyncpg.Pool,
) -> None:
    local, opener = FakeRuntime(), Opener()
    charts = opener.runtime = ChartingRuntime()
    env = await environment(pool, {"apps": ["api"], "charts": ["web"]}, cluster=self_managed())
    await as_helm(pool, env, "web")
    tools = tools_for(pool, local, opener=opener)

    done = await deploy_with(pool, env, tools)

    assert done.status == "SUCCESS", done.message
    [release] = charts.releases
    assert (release.release_name, release.chart["version"]) == ("web-release", "0.1.0")
    assert (release.values_yaml, dict(release.set), release.timeout_s) == (
        "greeting: hello\n",
        {"replicas": "2"},
        120.0,
    )
    assert release.environment_id == str(env.id)
    assert await service_state(pool, env, "web") == "DEPLOYED"
    assert str(env.services["web"]) not in charts.running()  # not a workload: a release

    async with pool.acquire() as conn, conn.transaction():
        row, _ = await requests.request(
            conn, environment_id=env.id, action=Action.DELETE, actor=SYSTEM
        )
    await Execution(tools, await claim(pool, row.id)).run()
    assert (await deployment(pool, row.id)).status == "SUCCESS"
    assert charts.chart_calls == [("uninstall", str(env.id), "web-release")]
    assert local.calls == []


async def test_a_chart_that_does_not_install_ends_deployment_error_with_helm_s_reason(
    pool: asyncpg.Pool,
) -> None:
    opener = Opener()
    opener.runtime = ChartingRuntime()
    env = await environment(pool, {"charts": ["web"]}, cluster=self_managed())
    await as_helm(pool, env, "web", chart="broken")

    done = await deploy_with(pool, env, tools_for(pool, FakeRuntime(), opener=opener))

    assert (done.status, done.reason) == ("ERROR", "HELM_FAILED"), done.message
    assert "selector" in done.message
    assert await environment_state(pool, env) == "DEPLOYMENT_ERROR"


async def test_a_helm_service_on_the_local_cluster_is_refused_at_deploy(
    pool: asyncpg.Pool,
) -> None:
    env = await environment(pool, {"charts": ["web"]})
    await as_helm(pool, env, "web")
    local = FakeRuntime()

    done = await deploy_with(pool, env, tools_for(pool, local))

    assert (done.status, done.reason) == ("ERROR", "KIND_NOT_SUPPORTED"), done.message
    assert "use a Kubernetes cluster" in done.message
    assert local.calls == []


async def test_a_git_chart_s_commit_is_recorded_and_a_rollback_installs_that_commit(
    pool: asyncpg.Pool,
) -> None:
    """The branch's head at deploy time goes into the deployment's snapshot; deploying that
    snapshot again installs the same commit while the branch moved on. The repository is fetched
    with the organization's git credential, opened for that install only."""
    opener = Opener()
    charts = opener.runtime = ChartingRuntime()
    env = await environment(pool, {"charts": ["web"]}, cluster=self_managed())
    url = "https://git.example.com/acme/charts.git"
    await as_helm(pool, env, "web", source={"source": "git", "url": url, "path": "/charts/web"})
    credential_id, token = uuid.uuid4(), "glpat-chart-token-0123456789"
    sealed = Sealer.from_setting(KEYS).seal(token.encode(), aad=credential_id.bytes)
    credential = ev.GitCredentialChanged(
        credential_id=credential_id,
        organization_id=env.organization_id,
        name="forge",
        kind="token",
        host="git.example.com",
        secret_sealed=base64.b64encode(sealed).decode(),
        version=1,
    )
    envelope = new_event(credential, subject=str(credential_id), source="catalog")
    async with db.transaction(pool) as conn:
        await git_credentials.on_changed(conn, envelope)
    tools = tools_for(pool, FakeRuntime(), opener=opener)
    web = str(env.services["web"])

    first = await deploy_with(pool, env, tools)
    charts.head = "2" * 40  # the branch moves on
    second = await deploy_with(pool, env, tools)

    assert (first.status, second.status) == ("SUCCESS", "SUCCESS"), (first, second)
    assert (first.snapshot or {})["chart_commits"] == {web: "1" * 40}
    assert (second.snapshot or {})["chart_commits"] == {web: "2" * 40}
    assert [r.chart.get("commit") for r in charts.releases] == [None, None]  # the head, each time
    assert charts.releases[0].git.token == token
    assert token not in repr(charts.releases[0])

    async with pool.acquire() as conn, conn.transaction():
        row, _ = await requests.rollback(conn, first.id, SYSTEM)
    await Execution(tools, await claim(pool, row.id)).run()

    assert (await deployment(pool, row.id)).status == "SUCCESS"
    assert charts.releases[-1].chart["commit"] == "1" * 40
