"""The environment's cluster chooses where its services run (issue 14, item 1), through the public
API with identity, catalog, deployer and gateway as real processes.

The bug this guards against: an environment on a self-managed cluster deployed on the local host.
An environment whose cluster's API server cannot be reached ends its deployment
``DEPLOYMENT_ERROR`` with ``CLUSTER_UNREACHABLE`` and a message naming the cluster, and nothing of
it runs on this machine; the same service on the organization's local cluster deploys as before.
The cluster's API server is a closed port on 127.0.0.1, allow-listed for the platform (plain
http is accepted only for an allow-listed target), as ``tests/security/test_ssrf.py`` does.
"""

from __future__ import annotations

import base64
import json
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml
from aiokafka import AIOKafkaProducer

from services.deployer.tests.integration.test_kubernetes_helm import push_chart
from slipway_contracts import new_event
from slipway_contracts.events.scheduler import JobRunRequested
from slipway_libs.testing.platform import Platform
from slipway_libs.testing.platform import closed_port as closed_loopback_port
from slipway_libs.testing.public_api import User, create_org, eventually, sign_up
from tests.e2e.deploying import Story, container, image_source, ready, service_processes

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


@pytest.fixture(scope="module")
def closed_port() -> Iterator[int]:
    with closed_loopback_port() as port:  # held: nothing listens there, nothing can
        yield port


@pytest.fixture(scope="module")
async def platform(platform_factory, devstack, closed_port: int) -> Platform:
    if "SLIPWAY_BASE_IMAGE" not in devstack.env:
        pytest.fail("the devstack has no registry/base image: run `make infra-up`")
    allow = [f"127.0.0.1:{closed_port}"]
    if api := devstack.env.get("SLIPWAY_KUBERNETES_API"):
        allow.append(urlsplit(api).netloc)  # the devstack's kube-apiserver, on loopback too
    extra = {"SLIPWAY_EGRESS_ALLOW": ",".join(allow)}
    # Helm services: the helm CLI, and the deployer's registry user to pull charts with
    for key in (
        "SLIPWAY_HELM",
        "SLIPWAY_DEPLOYER_REGISTRY_USERNAME",
        "SLIPWAY_DEPLOYER_REGISTRY_PASSWORD",
    ):
        if key in devstack.env:
            extra[key] = devstack.env[key]
    return await platform_factory(["identity", "catalog", "deployer", "gateway"], extra_env=extra)


@pytest.fixture
async def api(platform: Platform):
    async with httpx.AsyncClient(
        base_url=f"{platform.url('gateway')}/api/v1", timeout=30
    ) as client:
        yield client


async def environment_on(
    api: httpx.AsyncClient, owner: User, project: str, cluster_id: str, name: str
) -> Story:
    env = await api.post(
        f"/projects/{project}/environments",
        json={"name": name, "mode": "staging", "cluster_id": cluster_id},
        headers=owner.auth,
    )
    assert env.status_code == 201, env.text
    return Story(api, owner, env.json()["id"])


async def organization(api: httpx.AsyncClient) -> tuple[User, str, str]:
    owner = await sign_up(api, "Ops")
    org = await create_org(api, owner)
    project = await api.post(
        f"/organizations/{org}/projects", json={"name": "Shop"}, headers=owner.auth
    )
    assert project.status_code == 201, project.text
    return owner, org, project.json()["id"]


async def register(
    api: httpx.AsyncClient, owner: User, org: str, body: dict[str, Any]
) -> dict[str, Any]:
    created = await api.post(f"/organizations/{org}/clusters", json=body, headers=owner.auth)
    assert created.status_code == 201, created.text
    return created.json()


async def deploy_one_container(story: Story, base_image: str) -> tuple[dict[str, Any], str]:
    """The busybox container deployed on the story's environment: the deployment, its id."""
    box = await story.post(f"/environments/{story.env}/services", container(base_image), 201)
    await ready(story, 1)
    request = await story.post(f"/environments/{story.env}/deploy")
    return await story.settle(request["request_id"]), box["id"]


async def test_an_unreachable_cluster_fails_the_deployment_and_nothing_runs_locally(
    api, devstack, closed_port: int
) -> None:
    base = devstack.env["SLIPWAY_BASE_IMAGE"]
    owner, org, project = await organization(api)
    clusters = (await api.get(f"/organizations/{org}/clusters", headers=owner.auth)).json()
    local = next(c for c in clusters["items"] if c["kind"] == "local")
    edge = await register(
        api,
        owner,
        org,
        {"name": "edge-eu", "api_url": f"http://127.0.0.1:{closed_port}", "token": "t0ken"},
    )

    remote = await environment_on(api, owner, project, edge["id"], "remote")
    done, box = await deploy_one_container(remote, base)
    assert (done["status"], done["reason"]) == ("ERROR", "CLUSTER_UNREACHABLE"), done
    assert "edge-eu" in done["message"] and "could not be reached" in done["message"], done
    assert [s["status"] for s in done["stages"]] == ["SKIPPED"] * len(done["stages"])
    status = await remote.status()
    assert status["state"] == "DEPLOYMENT_ERROR", status
    assert status["services"][0]["running_status"] is None  # never started anywhere
    assert service_processes(box) == 0  # and not on this machine

    # the same service on the local cluster: deployed here, as before
    here = await environment_on(api, owner, project, local["id"], "here")
    done, box = await deploy_one_container(here, base)
    assert done["status"] == "SUCCESS", done
    assert (await here.service("box"))["running_status"] == "RUNNING"
    assert service_processes(box) >= 1
    stop = await here.post(f"/environments/{here.env}/stop")  # leave nothing running
    assert (await here.settle(stop["request_id"]))["status"] == "SUCCESS"
    assert service_processes(box) == 0


@pytest.mark.kubernetes  # skipped without the switch
async def test_a_cluster_refusing_the_credentials_is_unreachable(api, devstack) -> None:
    """The devstack's real kube-apiserver, registered with a token it does not know."""
    config = yaml.safe_load(Path(devstack.env["SLIPWAY_KUBERNETES_KUBECONFIG"]).read_text())
    server = config["clusters"][0]["cluster"]
    owner, org, project = await organization(api)
    ca = base64.b64decode(server["certificate-authority-data"]).decode()
    body = {"name": "k8s-wrong", "api_url": server["server"], "token": "not-a-token", "ca_cert": ca}
    cluster = await register(api, owner, org, body)

    story = await environment_on(api, owner, project, cluster["id"], "wrong-token")
    done, box = await deploy_one_container(story, devstack.env["SLIPWAY_BASE_IMAGE"])
    assert (done["status"], done["reason"]) == ("ERROR", "CLUSTER_UNREACHABLE"), done
    assert "k8s-wrong" in done["message"] and "refused the credentials" in done["message"]
    assert service_processes(box) == 0


@pytest.mark.kubernetes  # skipped without the switch
async def test_an_environment_on_a_kubernetes_cluster_runs_there_not_here(api, devstack) -> None:
    """The devstack's kube-apiserver (kwok's nodes) registered by its kubeconfig: the container
    becomes a Deployment in the environment's namespace, rolled out, and no process here."""
    kubectl = devstack.env["SLIPWAY_KUBECTL"]
    admin = devstack.env["SLIPWAY_KUBERNETES_ADMIN_KUBECONFIG"]
    kubeconfig = Path(devstack.env["SLIPWAY_KUBERNETES_KUBECONFIG"]).read_text()
    owner, org, project = await organization(api)
    cluster = await register(api, owner, org, {"name": "devstack", "kubeconfig": kubeconfig})
    story = await environment_on(api, owner, project, cluster["id"], "on-k8s")
    namespace = f"slipway-{story.env}"
    try:
        done, box = await deploy_one_container(story, devstack.env["SLIPWAY_BASE_IMAGE"])
        assert done["status"] == "SUCCESS", done
        assert service_processes(box) == 0  # nothing of it on this machine
        found = subprocess.run(
            [
                kubectl,
                f"--kubeconfig={admin}",
                "get",
                "deployments",
                "-n",
                namespace,
                "-l",
                f"slipway.dev/service={box}",
                "-o",
                "json",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        [deployment] = json.loads(found.stdout)["items"]
        assert deployment["status"].get("readyReplicas") == 1, deployment["status"]
        assert (await story.status())["state"] == "DEPLOYED"
    finally:
        forget_namespace(devstack, namespace)


def forget_namespace(devstack, namespace: str) -> None:
    """The test's namespace deleted in the background, whatever the test left (no wait)."""
    subprocess.run(
        [
            devstack.env["SLIPWAY_KUBECTL"],
            f"--kubeconfig={devstack.env['SLIPWAY_KUBERNETES_ADMIN_KUBECONFIG']}",
            "delete",
            "namespace",
            namespace,
            "--ignore-not-found",
            "--wait=false",
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )


def kube(devstack, *args: str) -> dict[str, Any]:
    """``kubectl … -o json`` as the cluster's admin."""
    done = subprocess.run(
        [
            devstack.env["SLIPWAY_KUBECTL"],
            f"--kubeconfig={devstack.env['SLIPWAY_KUBERNETES_ADMIN_KUBECONFIG']}",
            *args,
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def secret_values(devstack, namespace: str) -> list[str]:
    """Every value of every Secret in the namespace, decoded."""
    return [
        base64.b64decode(value).decode()
        for secret in kube(devstack, "get", "secrets", "-n", namespace)["items"]
        for value in (secret.get("data") or {}).values()
    ]


def namespace_gone(devstack, namespace: str) -> bool:
    found = kube(devstack, "get", "namespaces", "--field-selector", f"metadata.name={namespace}")
    return all(n["status"].get("phase") == "Terminating" for n in found["items"])


@pytest.mark.kubernetes  # skipped without the switch
async def test_the_deploy_story_on_a_kubernetes_cluster(api, devstack, platform) -> None:
    """The deployment story of ``test_deploy_story`` (local runtime) on the devstack's cluster,
    through the public API: a container, a PostgreSQL database and a cron job with a secret
    variable → their objects, rolled out, DEPLOYED; a changed secret → redeployed; rollback →
    the first value back; stop → scaled to zero and suspended, STOPPED; delete → the namespace
    goes. A secret's value is in Secret objects only; the scheduler's firings of the cron job
    start nothing (the CronJob is the schedule). (kwok's pods are Ready without running, so
    what the app serves is the local story's part.)"""
    kubeconfig = Path(devstack.env["SLIPWAY_KUBERNETES_KUBECONFIG"]).read_text()
    owner, org, project = await organization(api)
    cluster = await register(api, owner, org, {"name": "devstack", "kubeconfig": kubeconfig})
    story = await environment_on(api, owner, project, cluster["id"], "story")
    namespace = f"slipway-{story.env}"
    base = devstack.env["SLIPWAY_BASE_IMAGE"]
    try:
        secret = await story.post(
            "/variables",
            {
                "scope": "environment",
                "parent_id": story.env,
                "key": "API_KEY",
                "value": "first-s3cr3t",
                "is_secret": True,
            },
            expect=201,
        )
        await story.post(f"/environments/{story.env}/services", container(base), 201)
        await story.post(
            f"/environments/{story.env}/services",
            {"name": "db", "kind": "database", "engine": "postgresql"},
            201,
        )
        await story.post(
            f"/environments/{story.env}/services",
            {
                "name": "ticker",
                "kind": "cronjob",
                "image": image_source(base),
                "schedule": "*/5 * * * *",
                "command": ["sh", "-c", "echo tick"],
            },
            201,
        )
        await ready(story, 3)

        first = await story.post(f"/environments/{story.env}/deploy")
        done = await story.settle(first["request_id"])
        assert done["status"] == "SUCCESS", json.dumps(done["stages"], indent=1)
        status = await story.status()
        assert status["state"] == "DEPLOYED", status
        [deployment] = kube(devstack, "get", "deployments", "-n", namespace)["items"]
        assert deployment["status"].get("readyReplicas") == 1, deployment["status"]
        [statefulset] = kube(devstack, "get", "statefulsets", "-n", namespace)["items"]
        assert statefulset["status"].get("readyReplicas") == 1, statefulset["status"]
        [cronjob] = kube(devstack, "get", "cronjobs", "-n", namespace)["items"]
        assert cronjob["spec"]["schedule"] == "*/5 * * * *"
        assert "first-s3cr3t" in secret_values(devstack, namespace)
        for kind in ("deployments", "statefulsets", "cronjobs", "services", "configmaps"):
            listed = json.dumps(kube(devstack, "get", kind, "-n", namespace))
            assert "first-s3cr3t" not in listed, f"a secret's value in {kind}"

        await schedule_firings_are_the_clusters(api, platform, owner, org, project, story, base)

        changed = await api.patch(
            f"/variables/{secret['id']}", json={"value": "second-s3cr3t"}, headers=owner.auth
        )
        assert changed.status_code == 200, changed.text
        second = await story.post(f"/environments/{story.env}/deploy")
        assert (await story.settle(second["request_id"]))["status"] == "SUCCESS"
        values = secret_values(devstack, namespace)
        assert "second-s3cr3t" in values and "first-s3cr3t" not in values

        back = await story.post(f"/deployments/{first['request_id']}/rollback")
        rolled = await story.settle(back["request_id"])
        assert rolled["status"] == "SUCCESS", rolled
        values = secret_values(devstack, namespace)
        assert "first-s3cr3t" in values and "second-s3cr3t" not in values

        stop = await story.post(f"/environments/{story.env}/stop")
        assert (await story.settle(stop["request_id"]))["status"] == "SUCCESS"
        assert (await story.status())["state"] == "STOPPED"
        [deployment] = kube(devstack, "get", "deployments", "-n", namespace)["items"]
        assert deployment["spec"]["replicas"] == 0
        [statefulset] = kube(devstack, "get", "statefulsets", "-n", namespace)["items"]
        assert statefulset["spec"]["replicas"] == 0
        [cronjob] = kube(devstack, "get", "cronjobs", "-n", namespace)["items"]
        assert cronjob["spec"]["suspend"] is True

        gone = await story.post(f"/environments/{story.env}/delete")
        assert (await story.settle(gone["request_id"]))["status"] == "SUCCESS"
        assert (await story.status())["state"] == "DELETED"
        assert namespace_gone(devstack, namespace)
    finally:
        forget_namespace(devstack, namespace)


async def schedule_firings_are_the_clusters(
    api: httpx.AsyncClient,
    platform: Platform,
    owner: User,
    org: str,
    project: str,
    story: Story,
    base: str,
) -> None:
    """A firing of the scheduler for the cluster's cron job starts no run (the CronJob runs it:
    a run here too would double each one); the same firing for a cron job on the local cluster,
    sent after it on the same partition, does — so the first was seen and dropped."""
    clusters = (await api.get(f"/organizations/{org}/clusters", headers=owner.auth)).json()
    local = next(c for c in clusters["items"] if c["kind"] == "local")
    here = await environment_on(api, owner, project, local["id"], "cron-here")
    on_host = await here.post(
        f"/environments/{here.env}/services",
        {
            "name": "ticker",
            "kind": "cronjob",
            "image": image_source(base),
            "schedule": "*/5 * * * *",
            "command": ["sh", "-c", "echo tick"],
        },
        201,
    )
    await ready(here, 1)
    deployed = await here.post(f"/environments/{here.env}/deploy")
    assert (await here.settle(deployed["request_id"]))["status"] == "SUCCESS"
    on_cluster = await story.service("ticker")

    fired_at = datetime.now(UTC).replace(microsecond=0)
    producer = AIOKafkaProducer(**platform.kafka.options())
    await producer.start()
    try:
        for service, env in ((on_cluster, story.env), (on_host, here.env)):
            command = JobRunRequested(
                service_id=uuid.UUID(service["id"]),
                organization_id=uuid.UUID(org),
                environment_id=uuid.UUID(env),
                scheduled_at=fired_at,
            )
            envelope = new_event(command, subject=service["id"], source="scheduler")
            await producer.send_and_wait(  # one key: one partition, in this order
                platform.prefix + command.topic, envelope.to_json(), key=b"firings"
            )
    finally:
        await producer.stop()

    async def ran_here() -> bool:
        return bool((await here.get(f"/services/{on_host['id']}/runs"))["items"])

    await eventually(ran_here, within_s=60)
    assert (await story.get(f"/services/{on_cluster['id']}/runs"))["items"] == []


@pytest.mark.kubernetes  # skipped without the switch
async def test_a_helm_service_on_a_kubernetes_cluster(api, devstack, tmp_path: Path) -> None:
    """A chart pushed to the devstack's registry (oci://), as a Helm service through the public
    API: installed with the environment's variable under ``slipway.env`` (its ConfigMap), release
    revision 1, DEPLOYED; the variable changed → revision 2; rollback → the first value back as
    revision 3; the environment deleted → the release uninstalled, the namespace gone."""
    chart = f"web-{uuid.uuid4().hex[:8]}"
    url = await push_chart(devstack, tmp_path, name=chart)
    kubeconfig = Path(devstack.env["SLIPWAY_KUBERNETES_KUBECONFIG"]).read_text()
    owner, org, project = await organization(api)
    cluster = await register(api, owner, org, {"name": "devstack", "kubeconfig": kubeconfig})
    story = await environment_on(api, owner, project, cluster["id"], "charts")
    namespace = f"slipway-{story.env}"

    def seen() -> tuple[str, int]:
        """The chart's ConfigMap's mode and the release's latest revision (helm's records)."""
        settings = kube(devstack, "get", "configmap", "web-settings", "-n", namespace)
        records = kube(devstack, "get", "secrets", "-n", namespace, "-l", "owner=helm,name=web")
        revision = max(int(r["metadata"]["labels"]["version"]) for r in records["items"])
        return settings["data"]["mode"], revision

    try:
        mode = await story.post(
            "/variables",
            {"scope": "environment", "parent_id": story.env, "key": "MODE", "value": "one"},
            expect=201,
        )
        body = {
            "name": "web",
            "kind": "helm",
            "chart": {
                "source": "repository",
                "repository_url": url,
                "name": chart,
                "version": "0.1.0",
            },
            "timeout_s": 60,
        }
        await story.post(f"/environments/{story.env}/services", body, 201)
        await ready(story, 1)

        first = await story.post(f"/environments/{story.env}/deploy")
        done = await story.settle(first["request_id"])
        assert done["status"] == "SUCCESS", (done["reason"], done["message"])
        assert (await story.status())["state"] == "DEPLOYED"
        assert seen() == ("one", 1)

        changed = await api.patch(
            f"/variables/{mode['id']}", json={"value": "two"}, headers=owner.auth
        )
        assert changed.status_code == 200, changed.text
        second = await story.post(f"/environments/{story.env}/deploy")
        assert (await story.settle(second["request_id"]))["status"] == "SUCCESS"
        assert seen() == ("two", 2)

        back = await story.post(f"/deployments/{first['request_id']}/rollback")
        assert (await story.settle(back["request_id"]))["status"] == "SUCCESS"
        assert seen() == ("one", 3)

        gone = await story.post(f"/environments/{story.env}/delete")
        assert (await story.settle(gone["request_id"]))["status"] == "SUCCESS"
        assert namespace_gone(devstack, namespace)
    finally:
        forget_namespace(devstack, namespace)
