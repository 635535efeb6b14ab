"""A cron job's concurrency policy through the public API and the real deployer and local
runtime (issue 13, item 3): with ``allow`` a second run starts while the first still runs; with
``replace`` the running run is canceled (its process stopped) and the new one starts; with
``forbid`` the second is refused. Runs are asked for now (``POST /services/{id}/run``), so the
test needs no schedule to come round; ``GET /services/{id}/runs`` lists them."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from slipway_libs.testing.platform import Platform
from tests.e2e.deploying import Story, image_source, new_environment, ready

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

RUN_DEADLINE_S = 120


@pytest.fixture(scope="module")
async def platform(platform_factory, devstack) -> Platform:
    if "SLIPWAY_BASE_IMAGE" not in devstack.env:
        pytest.fail("the devstack has no registry/base image: run `make infra-up`")
    return await platform_factory(["identity", "catalog", "deployer", "gateway"])


async def deployed_job(api: Any, devstack: Any, policy: str) -> tuple[Story, str]:
    owner, _, env = await new_environment(api)
    story = Story(api, owner, env)
    job = await story.post(
        f"/environments/{env}/services",
        {
            "name": "report",
            "kind": "cronjob",
            "image": image_source(devstack.env["SLIPWAY_BASE_IMAGE"]),
            "schedule": "0 0 1 1 *",
            "timezone": "Europe/Paris",
            "concurrency_policy": policy,
            "command": ["sh", "-c", "sleep 300"],
        },
        expect=201,
    )
    await ready(story, 1)
    deploy = await story.post(f"/environments/{env}/deploy")
    assert (await story.settle(deploy["request_id"]))["status"] == "SUCCESS"
    return story, job["id"]


async def runs_until(story: Story, job: str, wanted: Any, what: str) -> list[dict[str, Any]]:
    """Poll the job's runs (oldest first) until ``wanted(runs)``; fails naming ``what``."""
    deadline = time.monotonic() + RUN_DEADLINE_S
    runs: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        runs = list(reversed((await story.get(f"/services/{job}/runs"))["items"]))
        if wanted(runs):
            return runs
        await asyncio.sleep(1)
    raise AssertionError(f"{what}: not within {RUN_DEADLINE_S}s: {runs}")


def statuses(runs: list[dict[str, Any]]) -> list[str]:
    return [run["status"] for run in runs]


async def test_allow_starts_a_second_run_alongside(api, devstack) -> None:
    story, job = await deployed_job(api, devstack, "allow")
    await story.post(f"/services/{job}/run")
    await runs_until(story, job, lambda r: statuses(r) == ["RUNNING"], "the first run runs")
    await story.post(f"/services/{job}/run")
    runs = await runs_until(
        story, job, lambda r: statuses(r) == ["RUNNING", "RUNNING"], "both runs run at once"
    )
    assert [run["trigger"] for run in runs] == ["user", "user"]


async def test_replace_cancels_the_running_run_then_starts_the_new_one(api, devstack) -> None:
    story, job = await deployed_job(api, devstack, "replace")
    await story.post(f"/services/{job}/run")
    await runs_until(story, job, lambda r: statuses(r) == ["RUNNING"], "the first run runs")
    await story.post(f"/services/{job}/run")
    runs = await runs_until(
        story,
        job,
        lambda r: statuses(r) == ["CANCELED", "RUNNING"],
        "the first run canceled, the second running",
    )
    first, second = runs
    assert "replaced by a newer run" in (first["message"] or "")
    assert first["finished_at"] is not None
    assert second["started_at"] >= first["finished_at"], "started once the first one stopped"


async def test_forbid_refuses_a_second_run(api, devstack) -> None:
    story, job = await deployed_job(api, devstack, "forbid")
    await story.post(f"/services/{job}/run")
    answer = await story.api.post(f"/services/{job}/run", headers=story.owner.auth)
    assert answer.status_code == 409, answer.text
    assert answer.json()["error"]["code"] == "JOB_ALREADY_RUNNING"
