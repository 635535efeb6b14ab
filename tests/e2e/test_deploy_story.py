"""The deployment story through the public API, every part real: identity, catalog, builder,
deployer and gateway as processes, Kafka, PostgreSQL, git, buildah, the registry, and the local
runtime running what is deployed on this machine (busybox httpd, a PostgreSQL server, a job).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from slipway_libs.testing.platform import Platform
from slipway_libs.testing.public_api import User, create_org, eventually, sign_up

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

DEPLOY_TIMEOUT_S = 300


def git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@e",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@e",
    }
    done = subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env
    )
    return done.stdout.strip()


def web_repo(root: Path, base_image: str, page: str) -> Path:
    """An app that serves ``index.html`` and, at ``/env.txt``, the variables it started with."""
    repo = root / "web"
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "Dockerfile").write_text(
        f"FROM {base_image}\n"
        "COPY index.html /www/index.html\n"
        'CMD ["sh", "-c", "env > /www/env.txt && exec httpd -f -p $PORT -h /www"]\n'
    )
    commit_page(repo, page)
    return repo


def commit_page(repo: Path, page: str) -> None:
    (repo / "index.html").write_text(page)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", page)


@pytest.fixture(scope="module")
def repos(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("repos")


@pytest.fixture(scope="module")
async def platform(platform_factory, repos, devstack) -> Platform:
    if "SLIPWAY_BASE_IMAGE" not in devstack.env:
        pytest.fail("the devstack has no registry/base image: run `make infra-up`")
    return await platform_factory(
        ["identity", "catalog", "builder", "deployer", "gateway"],
        extra_env={"SLIPWAY_GIT_LOCAL_ROOTS": str(repos)},
    )


@pytest.fixture
async def api(platform: Platform):
    async with httpx.AsyncClient(
        base_url=f"{platform.url('gateway')}/api/v1", timeout=30
    ) as client:
        yield client


class Story:
    def __init__(self, api: httpx.AsyncClient, owner: User, env: str) -> None:
        self.api, self.owner, self.env = api, owner, env

    async def post(self, path: str, body: Any = None, expect: int = 202) -> dict[str, Any]:
        response = await self.api.post(path, json=body, headers=self.owner.auth)
        assert response.status_code == expect, response.text
        return response.json() if response.content else {}

    async def get(self, path: str) -> dict[str, Any]:
        response = await self.api.get(path, headers=self.owner.auth)
        assert response.status_code == 200, response.text
        return response.json()

    async def status(self) -> dict[str, Any]:
        return await self.get(f"/environments/{self.env}/status")

    async def settle(self, request_id: str, timeout_s: float = DEPLOY_TIMEOUT_S) -> dict[str, Any]:
        """Wait until that deployment ended; return it."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            deployment = await self.get(f"/deployments/{request_id}")
            if deployment["status"] in ("SUCCESS", "ERROR", "CANCELED"):
                return deployment
            await asyncio.sleep(0.5)
        raise AssertionError(f"deployment {request_id} still {deployment['status']}")

    async def service(self, name: str) -> dict[str, Any]:
        return next(s for s in (await self.status())["services"] if s["name"] == name)


async def new_environment(api: httpx.AsyncClient) -> tuple[User, str, str]:
    owner = await sign_up(api, "Dev")
    org = await create_org(api, owner)
    clusters = (await api.get(f"/organizations/{org}/clusters", headers=owner.auth)).json()
    project = await api.post(
        f"/organizations/{org}/projects", json={"name": "Shop"}, headers=owner.auth
    )
    env = await api.post(
        f"/projects/{project.json()['id']}/environments",
        headers=owner.auth,
        json={"name": "staging", "mode": "staging", "cluster_id": clusters["items"][0]["id"]},
    )
    assert env.status_code == 201, env.text
    return owner, project.json()["id"], env.json()["id"]


def image_source(base_image: str) -> dict[str, str]:
    registry, _, rest = base_image.partition("/")
    name, _, tag = rest.partition(":")
    return {"registry": registry, "name": name, "tag": tag or "latest"}


def port_open(url: str) -> bool:
    host, port = url.removeprefix("http://").split("/")[0].split(":")
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, int(port))) == 0


async def test_deploy_update_roll_back_stop_and_delete(api, repos, devstack) -> None:
    base = devstack.env["SLIPWAY_BASE_IMAGE"]
    repo = web_repo(repos / "story", base, "<h1>one</h1>")
    owner, _, env = await new_environment(api)
    story = Story(api, owner, env)
    await story.post(
        f"/environments/{env}/services",
        {
            "name": "web",
            "kind": "application",
            "git": {"url": str(repo), "branch": "main"},
            "ports": [{"port": 8080, "public": True}],
        },
        expect=201,
    )
    await story.post(
        f"/environments/{env}/services",
        {"name": "db", "kind": "database", "engine": "postgresql", "version": "15"},
        expect=201,
    )
    await story.post(
        f"/environments/{env}/services",
        {
            "name": "seed",
            "kind": "lifecycle",
            "image": image_source(base),
            "command": ["sh", "-c", 'echo \'{"GREETING": "hello"}\' > /slipway/output.json'],
            "triggers": ["start"],
            "output_variables": True,
        },
        expect=201,
    )

    for variable in (
        {"key": "API_KEY", "value": "s3cr3t-value", "is_secret": True},
        {
            "key": "CONFIG",
            "kind": "file",
            "mount_path": "/www/config.txt",
            "value": "greeting={{API_KEY}}",
            "is_secret": True,
        },
    ):
        await story.post(
            "/variables", {"scope": "environment", "parent_id": env, **variable}, expect=201
        )

    async def knows_all() -> bool:  # 404 until the deployer learned the environment
        response = await api.get(f"/environments/{env}/status", headers=owner.auth)
        return response.status_code == 200 and len(response.json()["services"]) == 3

    await eventually(knows_all, within_s=30)
    assert (await story.status())["freshness"] == "NEVER_DEPLOYED"

    first = await story.post(f"/environments/{env}/deploy")
    assert first["action"] == "DEPLOY"
    done = await story.settle(first["request_id"])
    assert done["status"] == "SUCCESS", done
    assert [s["name"] for s in done["stages"]] == ["databases", "jobs", "applications"]
    assert all(s["status"] == "DONE" for s in done["stages"])
    status = await story.status()
    assert status["state"] == "DEPLOYED" and status["status"] == "SUCCESS", status
    assert status["freshness"] == "UP_TO_DATE"
    web = await story.service("web")
    assert web["state"] == "DEPLOYED" and web["running_status"] == "RUNNING", web
    url = web["urls"][0]
    async with httpx.AsyncClient(timeout=5) as http:
        assert (await http.get(url)).text == "<h1>one</h1>"
        seen = (await http.get(f"{url}/env.txt")).text
    db = await story.service("db")
    assert db["running_status"] == "RUNNING"
    variables = dict(line.split("=", 1) for line in seen.splitlines() if "=" in line)
    assert variables["SLIPWAY_DB_HOST"] == "127.0.0.1"
    assert variables["SLIPWAY_DB_URL"].startswith("postgresql://")
    assert variables["GREETING"] == "hello"  # the lifecycle job's output
    assert variables["API_KEY"] == "s3cr3t-value"  # a secret, unsealed only for the app
    async with httpx.AsyncClient(timeout=5) as http:
        assert (await http.get(f"{url}/config.txt")).text == "greeting=s3cr3t-value"
    import asyncpg

    conn = await asyncpg.connect(variables["SLIPWAY_DB_URL"])  # the app could reach it
    assert await conn.fetchval("SELECT 1") == 1
    await conn.close()

    commit_page(repo, "<h1>two</h1>")
    second = await story.post(f"/environments/{env}/deploy")
    assert (await story.settle(second["request_id"]))["status"] == "SUCCESS"
    web = await story.service("web")
    assert web["urls"][0] == url  # a redeploy keeps the URL
    async with httpx.AsyncClient(timeout=5) as http:
        assert (await http.get(url)).text == "<h1>two</h1>"

    back = await story.post(f"/deployments/{first['request_id']}/rollback")
    rolled = await story.settle(back["request_id"])
    assert rolled["status"] == "SUCCESS" and rolled["rollback_of"] == first["request_id"]
    assert not any(s["build_id"] for stage in rolled["stages"] for s in stage["services"])
    async with httpx.AsyncClient(timeout=5) as http:
        assert (await http.get(url)).text == "<h1>one</h1>"

    history = await story.get(f"/environments/{env}/deployments")
    assert [d["id"] for d in history["items"]] == [
        back["request_id"],
        second["request_id"],
        first["request_id"],
    ]
    assert history["items"][-1]["triggered_by"]["type"] == "user"

    stop = await story.post(f"/environments/{env}/stop")
    assert (await story.settle(stop["request_id"]))["status"] == "SUCCESS"
    status = await story.status()
    assert status["state"] == "STOPPED", status
    assert not port_open(url)

    gone = await story.post(f"/environments/{env}/delete")
    assert (await story.settle(gone["request_id"]))["status"] == "SUCCESS"
    assert (await story.status())["state"] == "DELETED"
    await story.post(f"/environments/{env}/deploy", expect=409)
    deleted = await api.delete(f"/environments/{env}", headers=owner.auth)
    assert deleted.status_code == 204, deleted.text
