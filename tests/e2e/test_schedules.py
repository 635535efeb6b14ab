"""Schedules through the public API (issue 13): a cron job deployed from an image runs on its
schedule (the scheduler's timer -> scheduler.JobRunRequested -> the deployer's run, shown in
``GET /services/{id}/runs``); ``GET /environments/{id}/schedule`` shows the next runs and
follows a schedule change; a deployment rule's stop and start times stop the environment and
deploy it again, with the trigger ``schedule``. Real time: an every-minute schedule, polled
with generous deadlines."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from slipway_libs.testing.platform import Platform
from tests.e2e.deploying import Story, image_source, new_environment, ready

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

# an every-minute schedule fires within 60 s, the run takes a few more; a loaded machine more
RUN_DEADLINE_S = 240


@pytest.fixture(scope="module")
async def platform(platform_factory, devstack) -> Platform:
    if "SLIPWAY_BASE_IMAGE" not in devstack.env:
        pytest.fail("the devstack has no registry/base image: run `make infra-up`")
    return await platform_factory(["identity", "catalog", "deployer", "scheduler", "gateway"])


async def poll(check: Any, what: str, deadline_s: float = RUN_DEADLINE_S) -> Any:
    """``await check()`` until it answers something truthy; fails naming ``what``."""
    deadline = time.monotonic() + deadline_s
    last = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(1)
    raise AssertionError(f"{what}: not within {deadline_s}s (last: {last})")


def _summary(runs: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What says why a run ended as it did (a failure message, not the runs' ids)."""
    keys = ("trigger", "status", "scheduled_at", "created_at", "finished_at", "message")
    return [tuple(r[k] for k in keys) for r in runs]


def _overlapped(skipped: dict[str, Any], runs: list[dict[str, Any]]) -> bool:
    """Whether a run that did go had been queued before ``skipped`` was recorded (its end is
    not compared: ``now()`` is each transaction's start, so a run finishing concurrently may
    carry an earlier ``finished_at`` than the skip it caused)."""
    at = datetime.fromisoformat(skipped["created_at"])
    return any(
        r["status"] != "SKIPPED" and datetime.fromisoformat(r["created_at"]) < at for r in runs
    )


async def test_a_deployed_cron_job_runs_on_its_schedule(api, devstack) -> None:
    owner, _, env = await new_environment(api)
    story = Story(api, owner, env)
    job = await story.post(
        f"/environments/{env}/services",
        {
            "name": "ticker",
            "kind": "cronjob",
            "image": image_source(devstack.env["SLIPWAY_BASE_IMAGE"]),
            "schedule": "* * * * *",
            "command": ["sh", "-c", "echo tick"],
        },
        expect=201,
    )
    await ready(story, 1)

    async def job_scheduled() -> dict[str, Any] | None:
        schedule = await story.get(f"/environments/{env}/schedule")
        return next((j for j in schedule["jobs"] if j["service_id"] == job["id"]), None)

    entry = await poll(job_scheduled, "the scheduler knows the job", 60)
    assert entry["schedule"] == "* * * * *" and entry["timezone"] == "UTC"
    # not deployed yet: the deployer would not run it, so nothing fires
    assert entry["deployed"] is False and entry["next_run_at"] is None

    deploy = await story.post(f"/environments/{env}/deploy")
    assert (await story.settle(deploy["request_id"]))["status"] == "SUCCESS"

    async def armed() -> dict[str, Any] | None:
        entry = await job_scheduled()
        return entry if entry is not None and entry["next_run_at"] else None

    entry = await poll(armed, "the deployed job's timer is armed", 60)
    assert entry["deployed"] is True
    next_run = datetime.fromisoformat(entry["next_run_at"])
    assert next_run.second == 0 and next_run > datetime.now(UTC) - timedelta(minutes=1)

    async def scheduled_run_succeeded() -> dict[str, Any] | None:
        runs = (await story.get(f"/services/{job['id']}/runs"))["items"]
        return next(
            (r for r in runs if r["trigger"] == "schedule" and r["status"] == "SUCCEEDED"), None
        )

    run = await poll(scheduled_run_succeeded, "a scheduled run of the deployed job succeeds")
    assert run["scheduled_at"] is not None
    assert datetime.fromisoformat(run["scheduled_at"]).second == 0
    runs = (await story.get(f"/services/{job['id']}/runs"))["items"]
    scheduled = [r for r in runs if r["trigger"] == "schedule"]
    instants = [r["scheduled_at"] for r in scheduled]
    assert len(instants) == len(set(instants)), "one run per scheduled instant"
    # the job's policy is forbid: on a crowded machine a run can outlast the minute, and the next
    # instant is then rightly SKIPPED — but only for that reason, while another run was going
    for skipped in (r for r in scheduled if r["status"] == "SKIPPED"):
        assert "concurrency policy forbid" in (skipped["message"] or ""), _summary(scheduled)
        assert _overlapped(skipped, runs), _summary(runs)

    # a schedule change takes effect at once: the next run is the new schedule's
    response = await api.patch(
        f"/services/{job['id']}", json={"schedule": "0 0 1 1 *"}, headers=owner.auth
    )
    assert response.status_code == 200, response.text

    async def rescheduled() -> bool:
        entry = await job_scheduled()
        return entry is not None and entry["schedule"] == "0 0 1 1 *"

    await poll(rescheduled, "the schedule change re-arms the timer", 60)
    entry = await job_scheduled()
    assert entry is not None
    next_run = datetime.fromisoformat(entry["next_run_at"])
    assert (next_run.month, next_run.day, next_run.hour, next_run.minute) == (1, 1, 0, 0)

    # a deleted job stops firing: its timer is gone
    response = await api.delete(f"/services/{job['id']}", headers=owner.auth)
    assert response.status_code == 204, response.text

    async def unscheduled() -> bool:
        return await job_scheduled() is None

    await poll(unscheduled, "the deleted job's timer is removed", 60)


async def test_a_deployment_rule_stops_and_starts_the_environment_at_its_times(
    api, devstack
) -> None:
    owner, _, env = await new_environment(api)
    story = Story(api, owner, env)
    await story.post(
        f"/environments/{env}/services",
        {
            "name": "box",
            "kind": "container",
            "image": image_source(devstack.env["SLIPWAY_BASE_IMAGE"]),
            "command": ["sh", "-c", "mkdir -p /www && exec httpd -f -p $PORT -h /www"],
            "ports": [{"port": 8080}],
        },
        expect=201,
    )
    await ready(story, 1)
    deploy = await story.post(f"/environments/{env}/deploy")
    assert (await story.settle(deploy["request_id"]))["status"] == "SUCCESS"

    # stop at the next whole minute at least 30 s away and start again a minute later, every
    # day, in UTC
    stop_at = (datetime.now(UTC) + timedelta(seconds=90)).replace(second=0, microsecond=0)
    start_at = stop_at + timedelta(minutes=1)
    everyday = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    response = await api.put(
        f"/environments/{env}/deployment-rule",
        json={
            "auto_stop": True,
            "stop_time": stop_at.strftime("%H:%M"),
            "auto_start": True,
            "start_time": start_at.strftime("%H:%M"),
            "weekdays": everyday,
            "timezone": "UTC",
        },
        headers=owner.auth,
    )
    assert response.status_code == 200, response.text

    async def rule_announced() -> dict[str, Any] | None:
        schedule = await story.get(f"/environments/{env}/schedule")
        return schedule if schedule["next_start_at"] and schedule["next_stop_at"] else None

    schedule = await poll(rule_announced, "the schedule shows the next stop and start", 60)
    assert schedule["auto_stop"] and schedule["auto_start"]
    assert datetime.fromisoformat(schedule["next_stop_at"]) == stop_at
    assert datetime.fromisoformat(schedule["next_start_at"]) == start_at

    def by_schedule(action: str) -> Any:
        async def find() -> dict[str, Any] | None:
            history = (await story.get(f"/environments/{env}/deployments"))["items"]
            return next(
                (d for d in history if d["action"] == action and d["trigger"] == "schedule"),
                None,
            )

        return find

    stop = await poll(by_schedule("STOP"), "the rule's stop is queued with trigger schedule")
    assert stop["triggered_by"]["origin"] == "scheduler"
    assert (await story.settle(stop["id"]))["status"] == "SUCCESS"
    start = await poll(by_schedule("DEPLOY"), "the rule's start is queued with trigger schedule")
    assert start["triggered_by"]["origin"] == "scheduler"
    assert (await story.settle(start["id"]))["status"] == "SUCCESS"
    assert (await story.status())["state"] == "DEPLOYED"
    schedule = await story.get(f"/environments/{env}/schedule")
    assert datetime.fromisoformat(schedule["last_stop_at"]) == stop_at
    assert datetime.fromisoformat(schedule["last_start_at"]) == start_at
    assert datetime.fromisoformat(schedule["next_stop_at"]) == stop_at + timedelta(days=1)
    assert datetime.fromisoformat(schedule["next_start_at"]) == start_at + timedelta(days=1)


async def test_another_organization_cannot_read_the_schedule(api) -> None:
    _, _, env = await new_environment(api)
    stranger, _, _ = await new_environment(api)
    response = await api.get(f"/environments/{env}/schedule", headers=stranger.auth)
    assert response.status_code == 404, response.text
