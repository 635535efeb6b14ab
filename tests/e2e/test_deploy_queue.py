"""Deployments that do not go straight: the queue and its merging, a cancel during a build, a
failing build, and a deployer killed in the middle — all through the public API, against the
real services, broker, database, git, buildah and registry."""

from __future__ import annotations

import asyncio
import signal
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer

from slipway_contracts import new_event
from slipway_contracts.events.scheduler import JobRunRequested
from slipway_libs.testing.platform import Platform
from tests.e2e.deploying import (
    Story,
    container,
    git,
    image_source,
    new_environment,
    port_open,
    ready,
    service_processes,
)

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


def repo_with(root: Path, name: str, dockerfile: str) -> Path:
    repo = root / name
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "Dockerfile").write_text(dockerfile)
    (repo / "index.html").write_text(name)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", name)
    return repo


async def test_requests_queue_in_order_and_identical_ones_merge(api, devstack) -> None:
    owner, _, env = await new_environment(api)
    story = Story(api, owner, env)
    # the first deployment takes a few seconds: the next requests find it running
    slow = container(devstack.env["SLIPWAY_BASE_IMAGE"], start_s=3)
    await story.post(f"/environments/{env}/services", slow, expect=201)
    await ready(story, 1)

    first = await story.post(f"/environments/{env}/deploy")
    for _ in range(300):  # running: what follows waits in the queue
        if (await story.get(f"/deployments/{first['request_id']}"))["status"] == "ONGOING":
            break
        await asyncio.sleep(0.05)
    second = await story.post(f"/environments/{env}/deploy")
    third = await story.post(f"/environments/{env}/deploy")
    stop = await story.post(f"/environments/{env}/stop")
    assert not first["merged"] and not second["merged"]
    assert third["request_id"] == second["request_id"] and third["merged"]  # the same ask
    assert stop["request_id"] != second["request_id"]

    asked = [first["request_id"], second["request_id"], stop["request_id"]]
    for request_id in asked:
        done = await story.settle(request_id)
        assert done["status"] == "SUCCESS", done
    history = await story.get(f"/environments/{env}/deployments")
    assert [d["id"] for d in history["items"]] == asked[::-1]
    started = [(await story.get(f"/deployments/{r}"))["started_at"] for r in asked]
    assert started == sorted(started)  # one at a time, in the order asked
    assert (await story.status())["state"] == "STOPPED"
    # nothing left to stop: refused with a stable code, nothing queued
    refused = await api.post(f"/environments/{env}/stop", headers=owner.auth)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "NOTHING_TO_STOP"


async def test_cancel_during_a_build_stops_it_and_cancels_the_rest(api, repos, devstack) -> None:
    base = devstack.env["SLIPWAY_BASE_IMAGE"]
    repo = repo_with(repos, "slow", f"FROM {base}\nRUN sleep 120\n")
    owner, _, env = await new_environment(api)
    story = Story(api, owner, env)
    await story.post(
        f"/environments/{env}/services",
        {"name": "slow", "kind": "application", "git": {"url": str(repo)}, "ports": [{"port": 80}]},
        expect=201,
    )
    await ready(story, 1)
    deploy = await story.post(f"/environments/{env}/deploy")
    for _ in range(600):
        detail = await story.get(f"/deployments/{deploy['request_id']}")
        runs = [s for stage in detail["stages"] for s in stage["services"]]
        if runs and runs[0]["build_status"] == "STARTED":
            break
        await asyncio.sleep(0.2)
    else:
        raise AssertionError(f"the build never started: {detail}")
    assert (await story.status())["state"] == "BUILDING"

    canceled = await story.post(f"/environments/{env}/cancel")
    assert canceled["request_id"] == deploy["request_id"]
    done = await story.settle(deploy["request_id"], timeout_s=60)
    assert done["status"] == "CANCELED", done
    assert [s["status"] for s in done["stages"]] == ["CANCELED"]
    assert (await story.status())["state"] == "CANCELED"
    # the builder was told: its build ends canceled, not after its two minutes
    for _ in range(300):
        detail = await story.get(f"/deployments/{deploy['request_id']}")
        if detail["stages"][0]["services"][0]["build_status"] == "CANCELED":
            break
        await asyncio.sleep(0.2)
    else:
        raise AssertionError(f"the build was not canceled: {detail}")


async def test_a_failing_build_fails_its_stage_and_skips_the_later_ones(
    api, platform: Platform, repos, devstack
) -> None:
    base = devstack.env["SLIPWAY_BASE_IMAGE"]
    repo = repo_with(repos, "broken", f"FROM {base}\nRUN false\n")
    owner, _, env = await new_environment(api)
    story = Story(api, owner, env)
    await story.post(
        f"/environments/{env}/services",
        {
            "name": "broken",
            "kind": "application",
            "git": {"url": str(repo)},
            "ports": [{"port": 80}],
        },
        expect=201,
    )
    late = await story.post(f"/environments/{env}/stages", {"name": "late"}, expect=201)
    box = await story.post(f"/environments/{env}/services", container(base), expect=201)
    moved = await api.put(
        f"/services/{box['id']}/stage", json={"stage_id": late["id"]}, headers=owner.auth
    )
    assert moved.status_code == 200, moved.text
    await ready(story, 2)
    await projected_in_stage(platform, box["id"], late["id"])

    deploy = await story.post(f"/environments/{env}/deploy")
    done = await story.settle(deploy["request_id"])
    assert done["status"] == "ERROR" and done["reason"] == "BUILD_FAILED", done
    assert [(s["name"], s["status"]) for s in done["stages"]] == [
        ("applications", "ERROR"),
        ("late", "SKIPPED"),
    ]
    assert "RUN false" in done["stages"][0]["services"][0]["message"]
    status = await story.status()
    assert status["state"] == "BUILD_ERROR"
    box_status = next(s for s in status["services"] if s["name"] == "box")
    assert box_status["running_status"] is None  # never started


async def test_a_deployer_killed_mid_deployment_finishes_it_without_duplicates(
    api, platform: Platform, repos, devstack
) -> None:
    base = devstack.env["SLIPWAY_BASE_IMAGE"]
    repo = repo_with(
        repos,
        "steady",
        f"FROM {base}\nRUN sleep 3\nCOPY index.html /www/index.html\n"
        'CMD ["sh", "-c", "exec httpd -f -p $PORT -h /www"]\n',
    )
    owner, _, env = await new_environment(api)
    story = Story(api, owner, env)
    made = await story.post(
        f"/environments/{env}/services",
        {
            "name": "steady",
            "kind": "application",
            "git": {"url": str(repo)},
            "ports": [{"port": 80}],
        },
        expect=201,
    )
    await ready(story, 1)
    deploy = await story.post(f"/environments/{env}/deploy")
    for _ in range(600):
        if (await story.status())["state"] == "BUILDING":
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError(f"the build never started: {await story.status()}")
    platform.stop("deployer", signal.SIGKILL)
    # killed in the middle: what it left is a deployment still ONGOING
    assert await deployment_status(platform, deploy["request_id"]) == "ONGOING"
    platform.start("deployer")
    await platform.wait_ready("deployer")

    done = await story.settle(deploy["request_id"])
    # why it failed first: the whole answer was cut off before its reason in CI's output
    assert done["status"] == "SUCCESS", (done["reason"], done["message"], done)
    web = await story.service("steady")
    assert web["state"] == "DEPLOYED" and web["running_status"] == "RUNNING"
    async with httpx.AsyncClient(timeout=5) as http:
        assert (await http.get(web["urls"][0])).text == "steady"
    assert service_processes(made["id"]) == 1

    # killed again while it runs: adopted, not started twice
    platform.stop("deployer", signal.SIGKILL)
    platform.start("deployer")
    await platform.wait_ready("deployer")
    restarted = await story.post(f"/services/{made['id']}/restart")
    assert (await story.settle(restarted["request_id"]))["status"] == "SUCCESS"
    assert service_processes(made["id"]) == 1


async def test_a_deployment_claimed_but_not_yet_planned_runs_when_the_deployer_is_back(
    api, platform: Platform, devstack
) -> None:
    """A claim only takes the request (ONGOING); its execution plans it. A deployer that died in
    between leaves a deployment with no stages: when it is back, it plans and runs it."""
    owner, _, env = await new_environment(api)
    story = Story(api, owner, env)
    await story.post(
        f"/environments/{env}/services", container(devstack.env["SLIPWAY_BASE_IMAGE"]), expect=201
    )
    await ready(story, 1)
    platform.stop("deployer", signal.SIGKILL)
    conn = await asyncpg.connect(platform.env["SLIPWAY_DEPLOYER_DATABASE_URL"])
    try:  # what the claim wrote, and nothing more
        claimed = await conn.fetchval(
            "INSERT INTO deployments (id, organization_id, project_id, environment_id, action,"
            " trigger, requested_by, status, started_at, heartbeat_at)"
            " SELECT $2, organization_id, project_id, id, 'DEPLOY', 'user',"
            " '{\"type\": \"user\"}'::jsonb, 'ONGOING', now(), now()"
            " FROM catalog_environments WHERE id = $1 RETURNING id",
            uuid.UUID(env),
            uuid.uuid4(),
        )
    finally:
        await conn.close()
    platform.start("deployer")
    await platform.wait_ready("deployer")

    done = await story.settle(str(claimed))
    assert done["status"] == "SUCCESS", done
    assert [stage["status"] for stage in done["stages"]] == ["DONE"]
    box = await story.service("box")
    assert box["state"] == "DEPLOYED" and box["running_status"] == "RUNNING"
    assert port_open(box["urls"][0])
    assert (await story.status())["state"] == "DEPLOYED"


async def test_a_cron_job_runs_when_forced_and_once_for_a_scheduler_command_delivered_twice(
    api, platform: Platform, devstack
) -> None:
    owner, _, env = await new_environment(api)
    story = Story(api, owner, env)
    cron = await story.post(
        f"/environments/{env}/services",
        {
            "name": "nightly",
            "kind": "cronjob",
            "image": image_source(devstack.env["SLIPWAY_BASE_IMAGE"]),
            "schedule": "0 3 * * *",
            "command": ["sh", "-c", 'echo ran-at-$(date +%s) && test -n "$SLIPWAY_SERVICE_ID"'],
        },
        expect=201,
    )
    await ready(story, 1)
    refused = await api.post(f"/services/{cron['id']}/run", headers=owner.auth)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "JOB_NOT_DEPLOYED"

    deploy = await story.post(f"/environments/{env}/deploy")
    assert (await story.settle(deploy["request_id"]))["status"] == "SUCCESS"
    forced = await story.post(f"/services/{cron['id']}/run")
    assert forced["trigger"] == "user"
    await finished_run(story, cron["id"], forced["run_id"], "SUCCEEDED")

    # the scheduler's command (as the scheduler would send it), delivered twice, then the next
    # firing's: once that one is recorded, the deployer has read both copies before it
    fired_at = datetime.now(UTC).replace(microsecond=0)
    organization_id = uuid.UUID((await story.get(f"/environments/{env}"))["organization_id"])
    firings = [fired_at, fired_at, fired_at + timedelta(hours=1)]
    producer = AIOKafkaProducer(**platform.kafka.options())
    await producer.start()
    try:
        for scheduled_at in firings:
            command = JobRunRequested(
                service_id=uuid.UUID(cron["id"]),
                organization_id=organization_id,
                environment_id=uuid.UUID(env),
                scheduled_at=scheduled_at,
            )
            envelope = new_event(command, subject=cron["id"], source="scheduler")
            await producer.send_and_wait(
                platform.prefix + command.topic, envelope.to_json(), key=cron["id"].encode()
            )
    finally:
        await producer.stop()
    for _ in range(300):
        runs = (await story.get(f"/services/{cron['id']}/runs"))["items"]
        scheduled = [r for r in runs if r["trigger"] == "schedule"]
        at = {r["scheduled_at"]: r for r in scheduled}
        first = at.get(fired_at.isoformat())
        if firings[-1].isoformat() in at and first and first["status"] not in ("QUEUED", "RUNNING"):
            break
        await asyncio.sleep(0.2)
    else:
        raise AssertionError(f"the scheduled runs never ended: {runs}")
    assert [r["scheduled_at"] for r in scheduled].count(fired_at.isoformat()) == 1, runs
    assert first["status"] == "SUCCEEDED", first


async def projected_in_stage(platform: Platform, service_id: str, stage_id: str) -> None:
    """Until the deployer's copy of the catalog has the service in that stage (the catalog
    answered the move at once; the deployer learns it from the catalog's events)."""
    conn = await asyncpg.connect(platform.env["SLIPWAY_DEPLOYER_DATABASE_URL"])
    try:
        for _ in range(300):
            stage = await conn.fetchval(
                "SELECT s.stage_id FROM catalog_services s"
                " JOIN catalog_stages g ON g.id = s.stage_id AND NOT g.deleted"
                " WHERE s.id = $1",
                uuid.UUID(service_id),
            )
            if stage == uuid.UUID(stage_id):
                return
            await asyncio.sleep(0.1)
    finally:
        await conn.close()
    raise AssertionError("the deployer never learned the service's stage")


async def deployment_status(platform: Platform, request_id: str) -> str:
    """Read in the deployer's database: the deployer itself may be down."""
    conn = await asyncpg.connect(platform.env["SLIPWAY_DEPLOYER_DATABASE_URL"])
    try:
        return str(
            await conn.fetchval(
                "SELECT status FROM deployments WHERE id = $1", uuid.UUID(request_id)
            )
        )
    finally:
        await conn.close()


async def finished_run(story: Story, service_id: str, run_id: str, expected: str) -> None:
    for _ in range(300):
        runs = (await story.get(f"/services/{service_id}/runs"))["items"]
        run = next(r for r in runs if r["run_id"] == run_id)
        if run["status"] not in ("QUEUED", "RUNNING"):
            assert run["status"] == expected, run
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"the run never finished: {run}")


async def test_what_the_catalog_deletes_stops_running(api, devstack) -> None:
    base = devstack.env["SLIPWAY_BASE_IMAGE"]
    owner, _, env = await new_environment(api)
    story = Story(api, owner, env)
    one = await story.post(f"/environments/{env}/services", container(base, "one"), expect=201)
    await story.post(f"/environments/{env}/services", container(base, "two"), expect=201)
    await story.post(
        f"/environments/{env}/services",
        {"name": "db", "kind": "database", "engine": "postgresql", "version": "15"},
        expect=201,
    )
    await ready(story, 3)
    deploy = await story.post(f"/environments/{env}/deploy")
    assert (await story.settle(deploy["request_id"]))["status"] == "SUCCESS"
    urls = {s["name"]: s["urls"][0] for s in (await story.status())["services"]}

    # one service deleted in the catalog: only it stops
    deleted = await api.delete(f"/services/{one['id']}", headers=owner.auth)
    assert deleted.status_code == 204, deleted.text
    await until(lambda: not port_open(urls["one"]))
    assert port_open(urls["two"])
    history = (await story.get(f"/environments/{env}/deployments"))["items"]
    assert history[0]["action"] == "DELETE" and history[0]["trigger"] == "system"
    assert (await story.settle(history[0]["id"]))["status"] == "SUCCESS"
    assert history[0]["service_ids"] == [one["id"]]
    assert (await story.status())["state"] == "DEPLOYED"  # the others still run

    # the whole environment deleted in the catalog: everything stops, the database too
    deleted = await api.delete(f"/environments/{env}", headers=owner.auth)
    assert deleted.status_code == 204, deleted.text
    db_port = int(urls["db"].rsplit(":", 1)[1].split("/")[0])
    await until(lambda: not port_open(urls["two"]) and not port_open(f"http://127.0.0.1:{db_port}"))


async def until(check, timeout_s: float = 60) -> None:
    for _ in range(int(timeout_s / 0.2)):
        if check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError("never happened")
