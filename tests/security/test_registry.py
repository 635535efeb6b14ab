"""The platform's OCI registry and the registries users name (issue 10, item 9 and flaw 3).

- The devstack's registry refuses anonymous requests: a deployed workload runs on the host network
  and could otherwise push or overwrite images (other tenants' included). The builder and the
  deployer reach it with their own users (tests/e2e/test_deploy_story.py builds, pushes and pulls
  through it).
- A container image's registry is a target the user chose: on a loopback, private, link-local or
  metadata address it is refused when the service is saved (422 TARGET_NOT_ALLOWED) and, past
  the catalog (allow-listed there, not in the deployer: as an allow-list entry removed after the
  save, or a name rebound to an internal address), when the deployer pulls: the deployment fails
  with TARGET_NOT_ALLOWED and nothing connects. The same holds for a Dockerfile's ``FROM``.
- The platform registry's ``slipway/<organization>/...`` images are that organization's builds:
  another tenant may name them neither in a container image nor in a ``FROM``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from slipway_libs.testing.platform import Platform
from slipway_libs.testing.public_api import User
from tests.e2e.deploying import Story, git, new_environment
from tests.security.conftest import Listener

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

MANIFESTS = (
    "application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json"
)


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("repos")


@pytest.fixture(scope="module")
async def platform(platform_factory, devstack, listener: Listener, repos: Path) -> Platform:
    if "SLIPWAY_BASE_IMAGE" not in devstack.env:
        pytest.fail("the devstack has no registry/base image: run `make infra-up`")
    return await platform_factory(
        ["identity", "catalog", "builder", "deployer", "gateway"],
        extra_env={
            # the catalog lets the listener's address through (as if it had been allow-listed
            # when the service was saved); the builder and the deployer do not
            "SLIPWAY_CATALOG_EGRESS_ALLOW": f"127.0.0.1:{listener.port}",
            "SLIPWAY_GIT_LOCAL_ROOTS": str(repos),
        },
    )


# --- the platform's registry ------------------------------------------------------------------


async def test_the_registry_refuses_anonymous_pulls_and_pushes(devstack) -> None:
    registry = f"http://{devstack.env['SLIPWAY_REGISTRY']}/v2"
    base = devstack.env["SLIPWAY_BASE_IMAGE"].partition("/")[2]
    repository, _, tag = base.partition(":")
    async with httpx.AsyncClient(base_url=registry, timeout=10, trust_env=False) as anonymous:
        assert (await anonymous.get("/")).status_code == 401
        manifest = await anonymous.get(
            f"/{repository}/manifests/{tag}", headers={"Accept": MANIFESTS}
        )
        assert manifest.status_code == 401
        # pushing starts with a blob upload; overwriting a tag is a manifest PUT
        assert (await anonymous.post(f"/{repository}/blobs/uploads/")).status_code == 401
        overwrite = await anonymous.put(
            f"/{repository}/manifests/{tag}",
            content=b"{}",
            headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
        )
        assert overwrite.status_code == 401
    wrong = ("admin", "not-the-password")
    async with httpx.AsyncClient(base_url=registry, timeout=10, auth=wrong) as guessing:
        assert (await guessing.get("/")).status_code == 401
    async with httpx.AsyncClient(
        base_url=registry, timeout=10, auth=devstack.registry_auth
    ) as admin:
        assert (await admin.get("/")).status_code == 200
        found = await admin.get(f"/{repository}/manifests/{tag}", headers={"Accept": MANIFESTS})
        assert found.status_code == 200


# --- registries users name ----------------------------------------------------------------------


@pytest.fixture(scope="module")
async def api(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=f"{platform.url('gateway')}/api/v1", timeout=30
    ) as client:
        yield client


def container(registry: str, name: str = "box") -> dict[str, Any]:
    return {
        "name": name,
        "kind": "container",
        "image": {"registry": registry, "name": "team/app", "tag": "1"},
        "command": ["sh", "-c", "exec httpd -f -p $PORT -h /"],
        "ports": [{"port": 8080}],
    }


async def test_an_image_on_an_internal_registry_is_refused_when_saved(
    api: httpx.AsyncClient, platform: Platform, devstack, listener: Listener
) -> None:
    owner, _, env = await new_environment(api)
    catalog_port = platform.url("catalog").rsplit(":", 1)[1]
    for registry in (
        f"127.0.0.1:{catalog_port}",  # one of the platform's own ports
        f"localhost:{catalog_port}",
        f"127.0.0.1:{listener.port + 1}",  # the allow-list is exact: another port is refused
        "169.254.169.254",
        "10.0.0.5:5000",
        "192.168.1.10",
        "0.0.0.0:5000",
    ):
        made = await api.post(
            f"/environments/{env}/services", json=container(registry), headers=owner.auth
        )
        assert made.status_code == 422, (registry, made.text)
        error = made.json()["error"]
        assert error["code"] == "TARGET_NOT_ALLOWED", (registry, error)
        assert error["details"] == {"field": "image.registry"}
        assert "does not connect to" in error["message"], error
    # the platform's own registry is where built images live: always allowed
    platform_image = container(devstack.env["SLIPWAY_REGISTRY"], "own")
    made = await api.post(f"/environments/{env}/services", json=platform_image, headers=owner.auth)
    assert made.status_code == 201, made.text
    # nor can a saved service be moved to an internal registry; other edits stay possible
    moved = await api.patch(
        f"/services/{made.json()['id']}",
        json={"image": {"registry": f"127.0.0.1:{catalog_port}"}},
        headers=owner.auth,
    )
    assert moved.status_code == 422 and moved.json()["error"]["code"] == "TARGET_NOT_ALLOWED"
    renamed = await api.patch(
        f"/services/{made.json()['id']}", json={"name": "renamed"}, headers=owner.auth
    )
    assert renamed.status_code == 200, renamed.text
    assert listener.accepted == []


async def test_another_organizations_builds_are_refused_when_saved(
    api: httpx.AsyncClient, devstack
) -> None:
    """The platform registry's ``slipway/<organization>/...`` holds that organization's builds;
    the deployer may pull anything there, so a tenant may not name another's."""
    owner, _, env = await new_environment(api)
    foreign = container(devstack.env["SLIPWAY_REGISTRY"])
    foreign["image"]["name"] = f"slipway/{uuid.uuid4()}/{uuid.uuid4()}"
    made = await api.post(f"/environments/{env}/services", json=foreign, headers=owner.auth)
    assert made.status_code == 422, made.text
    assert made.json()["error"]["code"] == "TARGET_NOT_ALLOWED"
    assert made.json()["error"]["details"] == {"field": "image.name"}


async def test_a_pull_from_an_internal_registry_fails_the_deployment_and_connects_nowhere(
    api: httpx.AsyncClient, listener: Listener
) -> None:
    owner, _, env = await new_environment(api)
    story = Story(api, owner, env)
    # saved past the catalog (its allow-list names the listener; the deployer's does not)
    await story.post(
        f"/environments/{env}/services", container(f"127.0.0.1:{listener.port}"), expect=201
    )
    done = await deploy_and_settle(story, owner, env)
    assert done["status"] == "ERROR", done
    service = done["stages"][0]["services"][0]
    assert service["reason"] == "TARGET_NOT_ALLOWED", service
    assert "does not connect to" in service["message"], service
    assert listener.accepted == []


async def test_a_dockerfile_from_an_internal_registry_fails_the_build_and_connects_nowhere(
    api: httpx.AsyncClient, devstack, listener: Listener, repos: Path
) -> None:
    repo = repos / "from-internal"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "Dockerfile").write_text(
        "ARG REGISTRY=127.0.0.1\n"  # a variable does not hide the registry
        f"FROM {devstack.env['SLIPWAY_BASE_IMAGE']} AS base\n"  # the platform's: allowed
        f"FROM ${{REGISTRY}}:{listener.port}/team/tools:1 AS tools\n"
        "FROM base\n"
        'CMD ["true"]\n'
    )
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "internal base image")
    owner, _, env = await new_environment(api)
    story = Story(api, owner, env)
    await story.post(
        f"/environments/{env}/services",
        {
            "name": "app",
            "kind": "application",
            "git": {"url": str(repo), "branch": "main"},
            "ports": [{"port": 8080}],
        },
        expect=201,
    )
    done = await deploy_and_settle(story, owner, env)
    assert done["status"] == "ERROR" and done["reason"] == "BUILD_FAILED", done
    message = done["stages"][0]["services"][0]["message"]
    assert f"127.0.0.1:{listener.port}/team/tools:1" in message, message
    assert "does not connect to" in message, message
    assert listener.accepted == []


async def test_a_dockerfile_from_another_organizations_build_fails_the_build(
    api: httpx.AsyncClient, devstack, repos: Path
) -> None:
    foreign = f"{devstack.env['SLIPWAY_REGISTRY']}/slipway/{uuid.uuid4()}/{uuid.uuid4()}:abc"
    repo = repos / "from-foreign"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "Dockerfile").write_text(f'FROM {foreign}\nCMD ["true"]\n')
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "another tenant's image")
    owner, _, env = await new_environment(api)
    story = Story(api, owner, env)
    body = {"name": "app", "kind": "application", "git": {"url": str(repo), "branch": "main"}}
    await story.post(f"/environments/{env}/services", body, expect=201)
    done = await deploy_and_settle(story, owner, env)
    assert done["status"] == "ERROR" and done["reason"] == "BUILD_FAILED", done
    message = done["stages"][0]["services"][0]["message"]
    assert "another organization's build" in message, message


async def deploy_and_settle(story: Story, owner: User, env: str) -> dict[str, Any]:
    for _ in range(300):  # until the deployer learned the service from the catalog's events
        status = await story.api.get(f"/environments/{env}/status", headers=owner.auth)
        if status.status_code == 200 and status.json()["services"]:
            break
        await asyncio.sleep(0.1)
    deploy = await story.post(f"/environments/{env}/deploy")
    return await story.settle(deploy["request_id"], timeout_s=180)
