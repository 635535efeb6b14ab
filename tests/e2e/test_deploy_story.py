"""The deployment story through the public API, every part real: identity, catalog, builder,
deployer and gateway as processes, Kafka, PostgreSQL, git, buildah, the registry, and the local
runtime running what is deployed on this machine (busybox httpd, a PostgreSQL server, a job).
"""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest

from slipway_contracts import Envelope
from slipway_contracts.events.deployer import DEPLOYMENT_TOPIC
from slipway_contracts.events.logs import LINES_TOPIC
from slipway_libs.testing.platform import Platform
from slipway_libs.testing.public_api import eventually
from tests.e2e.deploying import (
    Story,
    commit_page,
    image_source,
    new_environment,
    port_open,
    read_topic,
    trace_id,
    web_repo,
)

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


async def test_deploy_update_roll_back_stop_and_delete(api, platform, repos, devstack) -> None:
    base = devstack.env["SLIPWAY_BASE_IMAGE"]
    repo = web_repo(repos / "story", base, "<h1>one</h1>")
    owner, _, env = await new_environment(api)
    story = Story(api, owner, env)
    # variables first: the catalog's events of a project reach the deployer in order, so once it
    # knows the services below (``knows_all``) it knows these too, and the first deployment's
    # snapshot has them (a variable created after the last service could still be in flight)
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
    seed = await story.post(
        f"/environments/{env}/services",
        {
            "name": "seed",
            "kind": "lifecycle",
            "image": image_source(base),
            "command": [
                "sh",
                "-c",
                'echo seeding && echo \'{"GREETING": "hello"}\' > /slipway/output.json',
            ],
            "triggers": ["start"],
            "output_variables": True,
        },
        expect=201,
    )

    seed_id = seed["id"]

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
    conn = await asyncpg.connect(variables["SLIPWAY_DB_URL"])  # the app could reach it
    assert await conn.fetchval("SELECT 1") == 1
    await conn.close()

    await outside_subscribers_saw_it(platform, env, first["request_id"], seed_id)

    # a configuration change makes what runs out of date, until deployed
    await story.post(
        "/variables", {"scope": "environment", "parent_id": env, "key": "MODE", "value": "b"}, 201
    )

    async def out_of_date() -> bool:
        return (await story.service("web"))["freshness"] == "OUT_OF_DATE"

    await eventually(out_of_date, within_s=30)
    commit_page(repo, "<h1>two</h1>")
    second = await story.post(f"/environments/{env}/deploy")
    assert (await story.settle(second["request_id"]))["status"] == "SUCCESS"
    assert (await story.status())["freshness"] == "UP_TO_DATE"
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


async def outside_subscribers_saw_it(
    platform: Platform, env: str, deployment_id: str, job_id: str
) -> None:
    """The deployment's events on deployer.deployment.v1, in order and in the request's trace,
    and what the job printed on the log topic."""

    def of_deployment(seen: list[tuple[Envelope, dict[str, str]]]) -> list[Any]:
        return [(e, h) for e, h in seen if e.data.get("deployment_id") == deployment_id]

    events = of_deployment(
        await read_topic(
            platform,
            DEPLOYMENT_TOPIC,
            lambda seen: any(
                e.type == "deployer.DeploymentSucceeded" for e, _ in of_deployment(seen)
            ),
        )
    )
    types = [e.type for e, _ in events]
    assert types[0] == "deployer.DeploymentQueued" and types[1] == "deployer.DeploymentStarted"
    assert types[-1] == "deployer.DeploymentSucceeded"
    assert "deployer.DeploymentStageChanged" in types and "deployer.ServiceStatusChanged" in types
    assert all(e.subject == env for e, _ in events)  # keyed by environment: one queue, in order
    assert {trace_id(h) for _, h in events} == {trace_id(events[0][1])}  # one trace

    lines = await read_topic(
        platform,
        LINES_TOPIC,
        lambda seen: any(
            e.data["kind"] == "live"
            and e.data.get("service_id") == job_id
            and any(line["text"] == "seeding" for line in e.data["lines"])
            for e, _ in seen
        ),
    )
    assert any(
        e.data["kind"] == "deploy" and e.data.get("deployment_id") == deployment_id
        for e, _ in lines
    )
