"""The ``kubernetes`` runtime against the devstack's real kube-apiserver (kwok nodes: pods become
Ready without containers, Job pods complete, no container logs), as Slipway's deployer account
(its limited ClusterRole). Each test works in a namespace of its own (a fresh environment id),
deleted afterwards; objects are read back with the admin's kubeconfig."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from slipway_deployer.adapters.runtime.base import (
    ClusterAccess,
    CronSpec,
    FailureReason,
    HealthSpec,
    PortSpec,
    RunStatus,
    RuntimeFailure,
    Workload,
)
from slipway_deployer.adapters.runtime.kubernetes import (
    KubernetesOpener,
    KubernetesRuntime,
    KubernetesSettings,
    RegistryAuth,
    RenderOptions,
)
from slipway_deployer.adapters.runtime.kubernetes.client import KubeClient, KubeError
from slipway_deployer.adapters.runtime.kubernetes.names import namespace_name
from slipway_libs.testing.plugin import KUBERNETES_SWITCH

pytestmark = [pytest.mark.integration, pytest.mark.kubernetes]  # skipped without the switch

SECRET = "s3cr3t-value-that-must-stay-in-secrets"
FILE_SECRET = "-----BEGIN KEY----- file-secret-content"
REGISTRY_PASSWORD = "registry-password-of-the-platform"
# every kind a rendered object, or one the cluster derives from it, could land in
SCANNED = {
    "namespaces": "/api/v1/namespaces",
    "deployments": "/apis/apps/v1/namespaces/{ns}/deployments",
    "replicasets": "/apis/apps/v1/namespaces/{ns}/replicasets",
    "pods": "/api/v1/namespaces/{ns}/pods",
    "services": "/api/v1/namespaces/{ns}/services",
    "ingresses": "/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses",
    "configmaps": "/api/v1/namespaces/{ns}/configmaps",
    "events": "/api/v1/namespaces/{ns}/events",
    "jobs": "/apis/batch/v1/namespaces/{ns}/jobs",
    "secrets": "/api/v1/namespaces/{ns}/secrets",
}


def _access(devstack: Any, key: str) -> dict[str, Any]:
    value = devstack.env.get(key)
    if not value:
        pytest.fail(f"{key} is not in .devstack/env: run `{KUBERNETES_SWITCH}=1 make infra-up`")
    config = json.loads(Path(value).read_text())  # the devstack writes its kubeconfigs as JSON
    cluster, user = config["clusters"][0]["cluster"], config["users"][0]["user"]
    return {
        "api_url": cluster["server"],
        "token": user["token"],
        "ca_cert": base64.b64decode(cluster["certificate-authority-data"]).decode(),
    }


def _settings(**render: Any) -> KubernetesSettings:
    options = RenderOptions(
        ingress_class="slipway-test",
        ingress_domain="apps.slipway.test",
        ingress_tls=True,
        registry=RegistryAuth("127.0.0.1:15000", "slipway-pull", REGISTRY_PASSWORD),
        **render,
    )
    return KubernetesSettings(render=options, rollout_timeout_s=60.0, stop_timeout_s=60.0)


@pytest.fixture
async def admin(devstack: Any) -> AsyncIterator[KubeClient]:
    client = KubeClient.connect(**_access(devstack, "SLIPWAY_KUBERNETES_ADMIN_KUBECONFIG"))
    yield client
    await client.close()


@pytest.fixture
def environment_id() -> str:
    return str(uuid.uuid4())


@pytest.fixture
async def runtime(devstack: Any, environment_id: str) -> AsyncIterator[KubernetesRuntime]:
    access = _access(devstack, "SLIPWAY_KUBERNETES_KUBECONFIG")
    found = KubernetesRuntime.from_access(**access, settings=_settings())
    yield found
    await found.delete_environment(environment_id)
    await found.close()


def _app(environment_id: str, **overrides: Any) -> Workload:
    fields: dict[str, Any] = {
        "service_id": str(uuid.uuid4()),
        "environment_id": environment_id,
        "name": "web",
        "image": "127.0.0.1:15000/slipway/org/web:abc123",
        "args": ["serve", "--port", "8080"],
        "env": {"API_KEY": SECRET, "MODE": "production"},
        "files": {"/etc/web/key.pem": FILE_SECRET},
        "ports": [PortSpec(8080, public=True, default=True), PortSpec(9090)],
        "health": HealthSpec(type="http", path="/healthz", period_s=5, failure_threshold=2),
        "organization_id": str(uuid.uuid4()),
    }
    return Workload(**{**fields, **overrides})


async def _objects(admin: KubeClient, namespace: str) -> dict[str, list[dict[str, Any]]]:
    found = {}
    for kind, path in SCANNED.items():
        answer = await admin.request("GET", path.format(ns=namespace))
        items = answer.get("items") or []
        if kind == "namespaces":
            items = [i for i in items if i["metadata"]["name"] == namespace]
        found[kind] = items
    return found


def _versions(objects: dict[str, list[dict[str, Any]]]) -> dict[str, str]:
    return {
        f"{kind}/{item['metadata']['name']}": item["metadata"]["resourceVersion"]
        for kind, items in objects.items()
        if kind != "events"
        for item in items
    }


async def test_apply_renders_the_objects_and_returns_once_rolled_out(
    runtime: KubernetesRuntime, admin: KubeClient, environment_id: str
) -> None:
    workload = _app(environment_id)
    deployed = await runtime.apply(workload)

    namespace = namespace_name(environment_id)
    assert deployed.default_port == 8080
    assert deployed.url == f"https://web-{environment_id[:8]}.apps.slipway.test"
    assert deployed.urls[9090] == f"http://web.{namespace}.svc:9090"
    deployment = await admin.get("Deployment", namespace, "web")
    assert deployment is not None
    assert deployment["metadata"]["labels"]["slipway.dev/service"] == workload.service_id
    assert deployment["metadata"]["labels"]["slipway.dev/environment"] == environment_id
    assert deployment["metadata"]["labels"]["slipway.dev/organization"] == workload.organization_id
    assert deployment["status"]["availableReplicas"] == 1  # kwok made the pod Ready
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == workload.image
    assert container["args"] == ["serve", "--port", "8080"]
    assert container["envFrom"] == [{"secretRef": {"name": "web-env"}}]
    assert {"name": "PORT", "value": "8080"} in container["env"]
    assert [p["containerPort"] for p in container["ports"]] == [8080, 9090]
    assert container["readinessProbe"]["httpGet"] == {
        "path": "/healthz",
        "port": 8080,
        "scheme": "HTTP",
    }
    assert container["resources"] == {
        "requests": {"cpu": "500m", "memory": "512Mi"},
        "limits": {"memory": "512Mi"},
    }
    assert container["volumeMounts"][0]["mountPath"] == "/etc/web/key.pem"
    assert pod["imagePullSecrets"] == [{"name": "slipway-registry"}]
    service = await admin.get("Service", namespace, "web")
    assert service is not None
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [
        (8080, 8080),
        (9090, 9090),
    ]
    ingress = await admin.get("Ingress", namespace, "web")
    assert ingress is not None
    assert ingress["spec"]["ingressClassName"] == "slipway-test"
    assert [r["host"] for r in ingress["spec"]["rules"]] == [
        f"web-{environment_id[:8]}.apps.slipway.test"
    ]
    env = await admin.get("Secret", namespace, "web-env")
    assert env is not None
    assert base64.b64decode(env["data"]["API_KEY"]).decode() == SECRET
    state = await runtime.status(workload.service_id)
    assert state.status is RunStatus.RUNNING
    assert state.urls == deployed.urls


async def test_secret_values_are_in_secret_objects_only(
    runtime: KubernetesRuntime, admin: KubeClient, environment_id: str
) -> None:
    await runtime.apply(_app(environment_id))
    result = await runtime.run_job(_job(environment_id), timeout_s=60)
    assert result.exit_code == 0

    objects = await _objects(admin, namespace_name(environment_id))
    assert objects["pods"], "no pod to scan"
    values = [SECRET, FILE_SECRET, REGISTRY_PASSWORD]
    encoded = [base64.b64encode(v.encode()).decode() for v in values]
    for kind, items in objects.items():
        for item in items:
            text = json.dumps(item)
            leaked = [v for v in values if v in text]
            assert not leaked, f"{kind}/{item['metadata']['name']} holds a secret value in clear"
            if kind != "secrets":
                name = item["metadata"]["name"]
                assert not [v for v in encoded if v in text], f"{kind}/{name} holds a secret"


async def test_reapplying_an_unchanged_workload_changes_nothing_and_takes_drift_back(
    runtime: KubernetesRuntime, admin: KubeClient, environment_id: str
) -> None:
    workload = _app(environment_id)
    await runtime.apply(workload)
    namespace = namespace_name(environment_id)
    before = _versions(await _objects(admin, namespace))

    await runtime.apply(workload)

    assert _versions(await _objects(admin, namespace)) == before
    drift = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "evil:1"}]}}}}
    await admin.request(
        "PATCH",
        f"/apis/apps/v1/namespaces/{namespace}/deployments/web",
        body=drift,
        content_type="application/strategic-merge-patch+json",
    )
    await runtime.apply(workload)
    deployment = await admin.get("Deployment", namespace, "web")
    assert deployment is not None
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == workload.image


async def test_stop_scales_to_zero_and_restart_brings_it_back(
    runtime: KubernetesRuntime, admin: KubeClient, environment_id: str
) -> None:
    workload = _app(environment_id)
    await runtime.apply(workload)
    namespace = namespace_name(environment_id)

    await runtime.stop(workload.service_id)

    deployment = await admin.get("Deployment", namespace, "web")
    assert deployment is not None
    assert deployment["spec"]["replicas"] == 0
    assert (await runtime.status(workload.service_id)).status is RunStatus.STOPPED

    await runtime.restart(workload.service_id)

    deployment = await admin.get("Deployment", namespace, "web")
    assert deployment is not None
    assert deployment["spec"]["replicas"] == 1
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert "kubectl.kubernetes.io/restartedAt" in annotations
    assert (await runtime.status(workload.service_id)).status is RunStatus.RUNNING
    # the first deploy after a restart takes the replicas back (their owner changes), the next
    # one changes nothing; the restart's annotation is not slipway's: it stays
    await runtime.apply(workload)
    before = _versions(await _objects(admin, namespace))
    await runtime.apply(workload)
    assert _versions(await _objects(admin, namespace)) == before
    deployment = await admin.get("Deployment", namespace, "web")
    assert deployment is not None
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert "kubectl.kubernetes.io/restartedAt" in annotations


async def test_delete_removes_the_service_then_the_environment_its_namespace(
    runtime: KubernetesRuntime, admin: KubeClient, environment_id: str
) -> None:
    workload = _app(environment_id)
    other = _app(environment_id, service_id=str(uuid.uuid4()), name="worker", ports=[], health=None)
    await runtime.apply(workload)
    await runtime.apply(other)
    namespace = namespace_name(environment_id)

    await runtime.delete(workload.service_id)
    await runtime.delete(workload.service_id)  # idempotent

    for kind in ("Deployment", "Service", "Ingress"):
        assert await admin.get(kind, namespace, "web") is None, kind
    assert await admin.get("Secret", namespace, "web-env") is None
    assert await admin.get("Deployment", namespace, "worker") is not None
    with pytest.raises(RuntimeFailure) as missing:
        await runtime.status(workload.service_id)
    assert missing.value.reason is FailureReason.NOT_FOUND

    await runtime.delete_environment(environment_id)

    assert await admin.get("Namespace", None, namespace) is None


def _job(environment_id: str) -> Workload:
    return Workload(
        service_id=str(uuid.uuid4()),
        environment_id=environment_id,
        name="migrate",
        image="127.0.0.1:15000/slipway/org/migrate:abc123",
        command=["/bin/migrate"],
        env={"DATABASE_PASSWORD": SECRET},
        kind="job",
    )


async def test_a_job_runs_to_completion_and_is_removed(
    runtime: KubernetesRuntime, admin: KubeClient, environment_id: str
) -> None:
    job = _job(environment_id)

    result = await runtime.run_job(job, timeout_s=60)

    assert result.exit_code == 0
    assert result.output is None  # kwok runs no container: no termination message
    assert (await runtime.status(job.service_id)).status is RunStatus.COMPLETED
    jobs = await admin.list("Job", namespace_name(environment_id))
    assert [j for j in jobs if j["metadata"].get("deletionTimestamp") is None] == []


async def test_pods_that_never_become_ready_fail_with_the_reason_within_the_timeout(
    devstack: Any, environment_id: str
) -> None:
    access = _access(devstack, "SLIPWAY_KUBERNETES_KUBECONFIG")
    # more CPU than the fake node has: the pod stays Pending, Unschedulable
    settings = _settings(cpu_millicores=100_000_000)  # 100,000 CPUs: the node has 1,000
    settings = KubernetesSettings(render=settings.render, rollout_timeout_s=5.0)
    greedy = KubernetesRuntime.from_access(**access, settings=settings)
    try:
        with pytest.raises(RuntimeFailure) as failed:
            await greedy.apply(_app(environment_id))
        assert failed.value.reason is FailureReason.START_FAILED
        assert "not ready within 5 s" in failed.value.message
        assert "Unschedulable" in failed.value.message
        assert "Insufficient cpu" in failed.value.message
        assert SECRET not in failed.value.message
    finally:
        await greedy.delete_environment(environment_id)
        await greedy.close()


async def test_logs_end_with_a_clear_line_when_the_cluster_serves_none(
    runtime: KubernetesRuntime, environment_id: str
) -> None:
    workload = _app(environment_id)
    await runtime.apply(workload)

    async def read() -> list[str]:
        return [line.text async for line in runtime.logs(workload.service_id)]

    # a hang guard, not a speed check: kwok serves no logs, the stream must end by itself
    lines = await asyncio.wait_for(read(), timeout=60)
    assert lines, "no line at all"
    assert "does not serve" in lines[-1]


async def test_an_invalid_workload_is_refused_before_anything_is_applied(
    runtime: KubernetesRuntime, admin: KubeClient, environment_id: str
) -> None:
    bad = _app(environment_id, env={"NOT VALID": "x"})
    with pytest.raises(RuntimeFailure) as refused:
        await runtime.apply(bad)
    assert refused.value.reason is FailureReason.INVALID_WORKLOAD
    assert await admin.get("Namespace", None, namespace_name(environment_id)) is None


async def test_an_unreachable_or_refusing_api_server_is_cluster_unreachable(
    devstack: Any, unused_tcp_port: int
) -> None:
    access = _access(devstack, "SLIPWAY_KUBERNETES_KUBECONFIG")
    closed = KubernetesRuntime.from_access(
        **{**access, "api_url": f"https://127.0.0.1:{unused_tcp_port}"}
    )
    refused = KubernetesRuntime.from_access(**{**access, "token": "not-a-token"})
    try:
        for runtime in (closed, refused):
            with pytest.raises(RuntimeFailure) as failed:
                await runtime.ping()
            assert failed.value.reason is FailureReason.CLUSTER_UNREACHABLE
            assert "not-a-token" not in failed.value.message
    finally:
        await closed.close()
        await refused.close()
    reachable = KubernetesRuntime.from_access(**access)
    try:
        assert (await reachable.ping()).startswith("v1.")
    finally:
        await reachable.close()


# -- databases -------------------------------------------------------------------------------


@pytest.fixture
async def volume(admin: KubeClient) -> AsyncIterator[str]:
    """A PersistentVolume for the database's claim to bind (the devstack has no provisioner)."""
    name = f"slipway-test-{uuid.uuid4().hex[:8]}"
    manifest = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Delete",
            "hostPath": {"path": f"/tmp/{name}"},
        },
    }
    await admin.request("POST", "/api/v1/persistentvolumes", body=manifest)
    yield name
    try:  # released by the deleted claim, it may be gone already (reclaim policy Delete)
        await admin.request("DELETE", f"/api/v1/persistentvolumes/{name}")
    except KubeError as error:
        assert error.status == 404, error


async def test_a_database_is_a_stateful_set_with_its_claim_and_its_password_in_a_secret(
    devstack: Any, admin: KubeClient, environment_id: str, volume: str
) -> None:
    access = _access(devstack, "SLIPWAY_KUBERNETES_KUBECONFIG")
    runtime, databases = await KubernetesOpener(_settings())(
        ClusterAccess(cluster_id="c", name="devstack", **access, settings={})
    )
    namespace = namespace_name(environment_id)
    service_id = str(uuid.uuid4())
    try:
        connection = await databases.apply(
            service_id,
            engine="postgresql",
            version="16",
            name="shop",
            environment_id=environment_id,
        )
        assert connection.host.endswith(f".{namespace}.svc")
        assert (connection.port, connection.user, connection.database) == (5432, "shop", "shop")
        objects = await _objects(admin, namespace)
        [stateful_set] = (
            await admin.request("GET", f"/apis/apps/v1/namespaces/{namespace}/statefulsets")
        )["items"]
        container = stateful_set["spec"]["template"]["spec"]["containers"][0]
        assert container["image"] == "postgres:16"
        assert connection.password not in json.dumps(stateful_set)
        for kind, items in objects.items():
            if kind != "secrets":
                assert connection.password not in json.dumps(items), kind
        claims = await admin.list("PersistentVolumeClaim", namespace)
        assert [c["status"]["phase"] for c in claims] == ["Bound"]
        before = stateful_set["metadata"]["resourceVersion"]

        again = await databases.apply(
            service_id,
            engine="postgresql",
            version="16",
            name="shop",
            environment_id=environment_id,
        )

        assert again.password == connection.password
        same = await admin.get("StatefulSet", namespace, stateful_set["metadata"]["name"])
        assert same is not None
        assert same["metadata"]["resourceVersion"] == before
        assert (await databases.status(service_id)).status is RunStatus.RUNNING

        await databases.stop(service_id)
        assert (await databases.status(service_id)).status is RunStatus.STOPPED
        assert len(await admin.list("PersistentVolumeClaim", namespace)) == 1  # the data stays
        restarted = await databases.restart(service_id)
        assert restarted.password == connection.password
        assert (await databases.status(service_id)).status is RunStatus.RUNNING

        await databases.delete(service_id)
        claims = await admin.list("PersistentVolumeClaim", namespace)
        assert [c for c in claims if not c["metadata"].get("deletionTimestamp")] == []
        assert service_id not in await databases.adopt()
        with pytest.raises(RuntimeFailure) as missing:
            await databases.status(service_id)
        assert missing.value.reason is FailureReason.NOT_FOUND
    finally:
        await runtime.delete_environment(environment_id)
        await runtime.close()


async def test_a_cron_job_is_scheduled_by_the_cluster_suspended_by_stop_resumed_by_restart(
    runtime: KubernetesRuntime, admin: KubeClient, environment_id: str
) -> None:
    cron = replace(_job(environment_id), name="nightly", cron=CronSpec("0 3 * * *"))
    namespace = namespace_name(environment_id)

    deployed = await runtime.apply(cron)

    assert deployed.urls == {}
    found = await admin.get("CronJob", namespace, "nightly")
    assert found is not None
    assert (found["spec"]["schedule"], found["spec"]["suspend"]) == ("0 3 * * *", False)
    assert (await runtime.status(cron.service_id)).status is RunStatus.RUNNING
    await runtime.apply(cron)
    same = await admin.get("CronJob", namespace, "nightly")
    assert same is not None
    assert same["metadata"]["resourceVersion"] == found["metadata"]["resourceVersion"]

    await runtime.stop(cron.service_id)
    suspended = await admin.get("CronJob", namespace, "nightly")
    assert suspended is not None
    assert suspended["spec"]["suspend"] is True
    assert (await runtime.status(cron.service_id)).status is RunStatus.STOPPED

    await runtime.restart(cron.service_id)
    resumed = await admin.get("CronJob", namespace, "nightly")
    assert resumed is not None
    assert resumed["spec"]["suspend"] is False

    await runtime.delete(cron.service_id)
    assert await admin.get("CronJob", namespace, "nightly") is None


async def test_cancelling_a_rollout_stops_watching_and_leaves_what_was_applied(
    devstack: Any, admin: KubeClient, environment_id: str
) -> None:
    access = _access(devstack, "SLIPWAY_KUBERNETES_KUBECONFIG")
    # 100,000 CPUs: the node has 1,000 (10**6 millicores fitted it since b249c3e)
    never_ready = KubernetesRuntime.from_access(**access, settings=_settings(cpu_millicores=10**8))
    namespace = namespace_name(environment_id)
    try:
        applying = asyncio.create_task(never_ready.apply(_app(environment_id)))
        # the rollout is being watched once the pod exists (Pending: it fits no node)
        async for kind, _ in admin.watch(
            "Pod", namespace, labels="app.kubernetes.io/name=web", timeout_s=60
        ):
            if kind == "ADDED":
                break
        else:
            pytest.fail("no pod of the rollout within 60 s")
        assert not applying.done()

        applying.cancel()

        with pytest.raises(asyncio.CancelledError):
            await applying
        assert await admin.get("Deployment", namespace, "web") is not None
    finally:
        await never_ready.delete_environment(environment_id)
        await never_ready.close()


async def test_many_rollouts_at_once_share_a_small_connection_pool(
    devstack: Any, environment_id: str
) -> None:
    access = _access(devstack, "SLIPWAY_KUBERNETES_KUBECONFIG")
    # fewer connections than the rollouts' watches: requests queue, none is starved for good
    settings = replace(_settings(), max_connections=4)
    shared = KubernetesRuntime.from_access(**access, settings=settings)
    workloads = [
        _app(environment_id, service_id=str(uuid.uuid4()), name=f"svc-{i}") for i in range(6)
    ]
    try:
        deployed = await asyncio.gather(*(shared.apply(w) for w in workloads))
        assert [d.service_id for d in deployed] == [w.service_id for w in workloads]
        states = [await shared.status(w.service_id) for w in workloads]
        assert {s.status for s in states} == {RunStatus.RUNNING}
    finally:
        await shared.delete_environment(environment_id)
        await shared.close()


# -- pacing and watching (issue 14's benchmark: 100 environments x 3 services) ------------------


class CountingClient(KubeClient):
    """The real client, recording every request it sends (method, path, watch or not)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[tuple[str, str, bool]] = []

    async def _send(self, method: str, path: str, **kwargs: Any) -> Any:
        watch = (kwargs.get("query") or {}).get("watch") == "true"
        self.sent.append((method, path, watch))
        return await super()._send(method, path, **kwargs)


async def _until(what: str, check: Any, deadline_s: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    while not await check():
        if loop.time() > end:
            pytest.fail(f"{what}: not within {deadline_s:g} s")
        await asyncio.sleep(0.1)


async def test_a_rollout_that_never_gets_ready_does_not_delay_another_one(
    devstack: Any, admin: KubeClient, environment_id: str
) -> None:
    access = _access(devstack, "SLIPWAY_KUBERNETES_KUBECONFIG")
    # one start slot: were it held through the watch, the second apply would wait the timeout
    settings = replace(_settings(), start_slots=1, rollout_timeout_s=600.0)
    paced = KubernetesRuntime.from_access(**access, settings=settings)
    namespace = namespace_name(environment_id)
    greedy = _app(environment_id, name="greedy", cpu_millicores=10**8)  # fits no node
    try:
        stuck = asyncio.create_task(paced.apply(greedy))

        async def applied() -> bool:
            return await admin.get("Deployment", namespace, "greedy") is not None

        await _until("the never-ready Deployment applied", applied)
        deployed = await paced.apply(_app(environment_id))  # returns once rolled out

        assert deployed.url is not None
        assert not stuck.done(), "the never-ready rollout ended"
        assert (await paced.status(greedy.service_id)).status is RunStatus.STARTING
        stuck.cancel()
        with pytest.raises(asyncio.CancelledError):
            await stuck
    finally:
        await paced.delete_environment(environment_id)
        await paced.close()


async def test_running_services_are_watched_a_scale_to_zero_by_hand_seen_without_polling(
    devstack: Any, admin: KubeClient, environment_id: str
) -> None:
    access = _access(devstack, "SLIPWAY_KUBERNETES_KUBECONFIG")
    client = CountingClient.connect(**access)
    watched = KubernetesRuntime(client, _settings())
    namespace = namespace_name(environment_id)
    workload = _app(environment_id)
    try:
        await watched.apply(workload)
        assert (await watched.status(workload.service_id)).status is RunStatus.RUNNING
        client.sent.clear()  # the watch of the cluster's Deployments is open from here on

        for _ in range(20):  # a monitor's rounds at rest
            assert (await watched.status(workload.service_id)).status is RunStatus.RUNNING
        scale = {"spec": {"replicas": 0}}
        await admin.patch("Deployment", namespace, "web", scale, manager="someone")

        async def stopped() -> bool:
            return (await watched.status(workload.service_id)).status is RunStatus.STOPPED

        await _until("the scale to zero seen by the watch", stopped)
        assert client.sent == [], f"requests while only reading states: {client.sent}"
    finally:
        await watched.delete_environment(environment_id)
        await watched.close()


async def test_the_namespace_and_pull_secret_are_applied_once_per_environment_and_deployment(
    devstack: Any, admin: KubeClient, environment_id: str
) -> None:
    access = _access(devstack, "SLIPWAY_KUBERNETES_KUBECONFIG")
    client = CountingClient.connect(**access)
    runtime = KubernetesRuntime(client, _settings())
    namespace = namespace_name(environment_id)
    organization_id = str(uuid.uuid4())  # one environment's services: one organization's
    services = [
        _app(
            environment_id,
            service_id=str(uuid.uuid4()),
            name=f"svc-{i}",
            organization_id=organization_id,
        )
        for i in range(3)
    ]

    def applies_of(path: str) -> int:
        return sum(1 for method, sent, _ in client.sent if method == "PATCH" and sent == path)

    shared = [
        f"/api/v1/namespaces/{namespace}",
        f"/api/v1/namespaces/{namespace}/secrets/slipway-registry",
    ]
    try:
        runtime.begin_deployment(environment_id)
        await asyncio.gather(*(runtime.apply(w) for w in services))
        assert [applies_of(path) for path in shared] == [1, 1]

        await admin.delete("Secret", namespace, "slipway-registry")  # drift, by hand
        runtime.begin_deployment(environment_id)  # the next deployment takes it back, once
        await asyncio.gather(*(runtime.apply(w) for w in services))

        assert [applies_of(path) for path in shared] == [2, 2]
        assert await admin.get("Secret", namespace, "slipway-registry") is not None
    finally:
        await runtime.delete_environment(environment_id)
        await runtime.close()
