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
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from slipway_libs.testing.platform import Platform, free_port
from slipway_libs.testing.public_api import User, create_org, sign_up
from tests.e2e.deploying import Story, container, ready, service_processes

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


@pytest.fixture(scope="module")
def closed_port() -> int:
    return free_port()  # nothing listens there


@pytest.fixture(scope="module")
async def platform(platform_factory, devstack, closed_port: int) -> Platform:
    if "SLIPWAY_BASE_IMAGE" not in devstack.env:
        pytest.fail("the devstack has no registry/base image: run `make infra-up`")
    allow = [f"127.0.0.1:{closed_port}"]
    if api := devstack.env.get("SLIPWAY_KUBERNETES_API"):
        allow.append(urlsplit(api).netloc)  # the devstack's kube-apiserver, on loopback too
    return await platform_factory(
        ["identity", "catalog", "deployer", "gateway"],
        extra_env={"SLIPWAY_EGRESS_ALLOW": ",".join(allow)},
    )


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
        subprocess.run(
            [
                kubectl,
                f"--kubeconfig={admin}",
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
