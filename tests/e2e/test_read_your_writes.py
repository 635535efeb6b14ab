"""Read-your-writes between services: what a script creates in the catalog and deploys at once
is in the deployment, even when the deployer's copy of the catalog trails behind.

The deployer plans on its own projection of the catalog, fed by events. A script (a CI job,
``slipway apply``) that creates a stage, a service and a variable and asks for a deploy in the
same breath used to get a deployment planned before the projection had them: it ended SUCCESS,
the new service NEVER_DEPLOYED. Now every catalog write answers the project's revision, the
gateway carries the caller's latest one to the deployer, and the deployer serves the request
once its projection has reached it.

The slowdown is real contention, not a switch in the code: the test holds an EXCLUSIVE lock on
the deployer's projection of services most of the time (reads go on, writes wait), so the
catalog's consumer, which applies a project's events in order, applies a new service and
everything after it late. One table only: two would deadlock with the consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from slipway_libs.testing.platform import Platform
from slipway_libs.testing.public_api import User, create_org, sign_up
from tests.e2e.deploying import Story, image_source

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

ROUNDS = 100
LANES = 4  # scripts running side by side (each its own environment per round)
HOLD_S = 0.3  # how long each lock is held: well under the deployer's catalog wait (5 s)


@pytest.fixture(scope="module")
async def platform(platform_factory) -> Platform:
    return await platform_factory(["identity", "catalog", "deployer", "gateway"])


@pytest.fixture
async def api(platform: Platform):
    async with httpx.AsyncClient(
        base_url=f"{platform.url('gateway')}/api/v1", timeout=30
    ) as client:
        yield client


async def test_what_a_script_creates_and_deploys_at_once_is_in_every_deployment(
    api, platform: Platform, devstack
) -> None:
    owner = await sign_up(api, "Ci")
    org = await create_org(api, owner)
    cluster = (await api.get(f"/organizations/{org}/clusters", headers=owner.auth)).json()
    project = await api.post(
        f"/organizations/{org}/projects", json={"name": "Shop"}, headers=owner.auth
    )
    assert project.status_code == 201, project.text
    job = {
        "kind": "cronjob",  # deployed without starting anything: the plan is the point here
        "image": image_source(devstack.env["SLIPWAY_BASE_IMAGE"]),
        "schedule": "0 3 * * *",
        "command": ["true"],
    }
    script = Script(api, owner, project.json()["id"], cluster["items"][0]["id"], job)
    dsn = platform.env["SLIPWAY_DEPLOYER_DATABASE_URL"]
    deployer = await asyncpg.create_pool(dsn, min_size=1, max_size=LANES)
    stop = asyncio.Event()
    slowdown = asyncio.create_task(hold_projection_back(dsn, stop))
    try:
        rounds = iter(range(ROUNDS))
        results = await asyncio.gather(*(lane(script, rounds, deployer) for _ in range(LANES)))
    finally:
        stop.set()
        await slowdown
        await deployer.close()
    done = [r for lane_results in results for r in lane_results]
    assert len(done) == ROUNDS
    # the fault hit work in flight: most deploys were asked before the deployer had the service
    behind = sum(1 for r in done if r["behind"])
    assert behind >= ROUNDS // 4, f"only {behind} of {ROUNDS} deploys found the projection behind"
    wrong = {}
    for r in done:
        problems = await missing(Story(api, owner, r["env"]), r)
        if problems:
            wrong[r["deployment"]] = problems
    assert not wrong, (
        f"{len(wrong)} of {ROUNDS} deployments lack what was created ({behind} deploys asked"
        f" while the deployer's copy was behind): {wrong}"
    )


class Script:
    """What a CI job does, through the public API: create, then deploy at once."""

    def __init__(
        self, api: httpx.AsyncClient, owner: User, project: str, cluster: str, job: dict[str, Any]
    ) -> None:
        self.api, self.owner, self.project, self.cluster, self.job = (
            api,
            owner,
            project,
            cluster,
            job,
        )

    async def post(self, path: str, body: Any = None, expect: int = 201) -> dict[str, Any]:
        response = await self.api.post(path, json=body, headers=self.owner.auth)
        assert response.status_code == expect, response.text
        return response.json() if response.content else {}

    async def create(self, n: int) -> dict[str, str]:
        env = await self.post(
            f"/projects/{self.project}/environments",
            {"name": f"ci-{n}", "mode": "development", "cluster_id": self.cluster},
        )
        stage = await self.post(f"/environments/{env['id']}/stages", {"name": f"migrate-{n}"})
        service = await self.post(
            f"/environments/{env['id']}/services", {**self.job, "name": "job"}
        )
        moved = await self.api.put(
            f"/services/{service['id']}/stage",
            json={"stage_id": stage["id"]},
            headers=self.owner.auth,
        )
        assert moved.status_code == 200, moved.text
        variable = await self.post(
            "/variables",
            {"scope": "service", "parent_id": service["id"], "key": "GREETING", "value": "hi"},
        )
        return {
            "env": env["id"],
            "stage": stage["id"],
            "service": service["id"],
            "variable": variable["id"],
        }

    async def deploy(self, env: str) -> str:
        """202, or a 409 CATALOG_NOT_CAUGHT_UP to be sent again after its Retry-After."""
        for _ in range(5):
            response = await self.api.post(f"/environments/{env}/deploy", headers=self.owner.auth)
            if response.status_code == 202:
                return str(response.json()["request_id"])
            assert response.status_code == 409, response.text
            assert response.json()["error"]["code"] == "CATALOG_NOT_CAUGHT_UP", response.text
            await asyncio.sleep(float(response.headers["retry-after"]))
        raise AssertionError("the deployer never caught up with the catalog")


async def lane(script: Script, rounds: Any, deployer: asyncpg.Pool) -> list[dict[str, Any]]:
    done = []
    for n in rounds:
        created = await script.create(n)
        # was the deployer's copy behind when the deploy was asked? (a read: never blocked)
        known = await deployer.fetchval(
            "SELECT count(*) FROM catalog_services WHERE id = $1", uuid.UUID(created["service"])
        )
        deployment = await script.deploy(created["env"])
        done.append({**created, "deployment": deployment, "behind": known == 0})
    return done


async def hold_projection_back(dsn: str, stop: asyncio.Event) -> None:
    """The deployer's catalog consumer, slowed down: its writes wait for the lock."""
    conn = await asyncpg.connect(dsn)
    try:
        while not stop.is_set():
            async with conn.transaction():
                await conn.execute("LOCK TABLE catalog_services IN EXCLUSIVE MODE")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), HOLD_S)
            await asyncio.sleep(0.02)  # the consumer's waiting writes go through
    finally:
        await conn.close()


async def missing(story: Story, created: dict[str, Any]) -> list[str]:
    """What that round's deployment lacks of what the script created (empty: nothing)."""
    deployment = await story.settle(created["deployment"])
    problems = [] if deployment["status"] == "SUCCESS" else [f"status {deployment['status']}"]
    if [s["id"] for s in deployment["snapshot"]["services"]] != [created["service"]]:
        problems.append("service")
    stages = [
        (s["stage_id"], [run["service_id"] for run in s["services"]]) for s in deployment["stages"]
    ]
    if stages != [(created["stage"], [created["service"]])]:
        problems.append("stage")
    if [v["id"] for v in deployment["snapshot"].get("variables", [])] != [created["variable"]]:
        problems.append("variable")
    service = await story.get(f"/services/{created['service']}/status")
    if service["state"] != "DEPLOYED" or service["freshness"] != "UP_TO_DATE":
        problems.append(f"service {service['state']} {service['freshness']}")
    return problems
