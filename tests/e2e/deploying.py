"""Helpers of the deployment tests: git repositories, a user's environment, the public API."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer

from slipway_contracts import Envelope
from slipway_libs.testing.platform import Platform
from slipway_libs.testing.public_api import User, create_org, sign_up

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
        deployment: dict[str, Any] = {"status": "never read"}
        while time.monotonic() < deadline:
            response = await self.api.get(f"/deployments/{request_id}", headers=self.owner.auth)
            # 503/504 say "retry" (the fault tests stop PostgreSQL under the deployer meanwhile);
            # anything else but 200 is a failure
            if response.status_code not in (503, 504):
                assert response.status_code == 200, response.text
                deployment = response.json()
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


async def read_topic(
    platform: Platform,
    topic: str,
    done: Callable[[list[tuple[Envelope, dict[str, str]]]], bool],
    timeout_s: float = 60,
) -> list[tuple[Envelope, dict[str, str]]]:
    """A topic of the platform from its start, as (event, Kafka headers), until ``done``."""
    consumer = AIOKafkaConsumer(
        platform.prefix + topic,
        **platform.kafka.options(),
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    seen: list[tuple[Envelope, dict[str, str]]] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=300)).values():
                for record in records:
                    headers = {k: (v or b"").decode() for k, v in record.headers or ()}
                    seen.append((Envelope.from_json(record.value), headers))
            if done(seen):
                return seen
        raise AssertionError(f"{topic}: not there after {timeout_s}s; saw {len(seen)} events")
    finally:
        await consumer.stop()


def trace_id(headers: dict[str, str]) -> str:
    return headers["traceparent"].split("-")[1]


def container(base: str, name: str = "box", *, start_s: int = 0) -> dict[str, object]:
    """busybox httpd; ``start_s``: how long it takes to open its port."""
    return {
        "name": name,
        "kind": "container",
        "image": image_source(base),
        "command": [
            "sh",
            "-c",
            f"sleep {start_s} && mkdir -p /www && echo up > /www/index.html"
            " && exec httpd -f -p $PORT -h /www",
        ],
        "ports": [{"port": 8080}],
    }


async def ready(story: Story, count: int) -> None:
    """The deployer learned the services from the catalog's events (404 until it knows the
    environment: a loaded machine may take more than the request's own wait)."""
    for _ in range(300):
        response = await story.api.get(
            f"/environments/{story.env}/status", headers=story.owner.auth
        )
        if response.status_code == 200 and len(response.json()["services"]) == count:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the deployer never saw the services")


def service_processes(service_id: str) -> int:
    """``buildah run`` processes of that service (the runtime names containers after it)."""
    count = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if (
            b"run" in argv
            and any(service_id.encode() in a for a in argv)
            and any(a.endswith(b"buildah") for a in argv)
        ):
            count += 1
    return count
