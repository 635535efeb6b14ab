"""PostgreSQL stopped for a few seconds in the middle of a deployment.

The deployer must ride it out by itself (no restart by the test): the deployment, ONGOING when
PostgreSQL stops and ending after that, ends as it would have, the service runs once (not
twice), and new requests are served. This test stops the shared devstack's PostgreSQL, so it
runs in the serial fault phase of ``make test``.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import httpx
import pytest

from slipway_libs.testing.platform import Platform
from tests.e2e.deploying import Story, container, new_environment, ready, service_processes
from tests.fault.support import outage

pytestmark = [pytest.mark.fault, pytest.mark.integration]


@pytest.fixture
async def platform(platform_factory) -> Platform:
    return await platform_factory(["identity", "catalog", "deployer", "gateway"])


async def test_a_deployment_rides_out_a_database_outage(platform: Platform, devstack) -> None:
    base = devstack.env["SLIPWAY_BASE_IMAGE"]
    async with httpx.AsyncClient(base_url=f"{platform.url('gateway')}/api/v1", timeout=30) as api:
        owner, _, env = await new_environment(api)
        story = Story(api, owner, env)
        made = await story.post(
            f"/environments/{env}/services", container(base, start_s=12), expect=201
        )
        await ready(story, 1)
        deploy = await story.post(f"/environments/{env}/deploy")
        for _ in range(600):  # the container is starting (it opens its port after 12 s)
            if service_processes(made["id"]) == 1:
                break
            await asyncio.sleep(0.1)
        assert service_processes(made["id"]) == 1, await story.status()
        ongoing = await story.get(f"/deployments/{deploy['request_id']}")
        assert ongoing["status"] == "ONGOING", ongoing
        down_at = await outage("postgres", 4)

        done = await story.settle(deploy["request_id"], timeout_s=180)
        assert done["status"] == "SUCCESS", done
        # it ended after PostgreSQL had stopped: the outage hit it in flight, not after it
        assert datetime.fromisoformat(done["finished_at"]) > down_at, (done, down_at)
        box = await story.service("box")
        assert box["state"] == "DEPLOYED" and box["running_status"] == "RUNNING", box
        assert service_processes(made["id"]) == 1
        process = platform.services["deployer"].process
        assert process is not None and process.poll() is None, "the deployer exited"

        restarted = await story.post(f"/services/{made['id']}/restart")
        assert (await story.settle(restarted["request_id"]))["status"] == "SUCCESS"
        assert service_processes(made["id"]) == 1
