"""Outgoing webhooks through the public API (issue 13, item 5), with a real local HTTP receiver
(allow-listed to the scheduler by the platform's setting, as an operator would): a deployment
is delivered, signed with the webhook's secret, to the webhooks its filters let through; a
receiver that fails twice is retried (short back-off in this platform) until it answers, and
the delivery log shows each attempt; redeliver sends again; a loopback or private target the
allow-list does not name is refused; another organization reaches none of it (404)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from services.scheduler.tests.receiver import Receiver
from slipway_libs.testing.platform import Platform
from slipway_libs.testing.public_api import User, create_org, sign_up
from slipway_scheduler.domain.webhooks import verify
from tests.e2e.deploying import Story, container, ready

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

DELIVERY_DEADLINE_S = 120


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture(scope="module")
async def platform(platform_factory, devstack, receiver) -> Platform:
    if "SLIPWAY_BASE_IMAGE" not in devstack.env:
        pytest.fail("the devstack has no registry/base image: run `make infra-up`")
    return await platform_factory(
        ["identity", "catalog", "deployer", "scheduler", "gateway"],
        extra_env={
            # the receiver is on loopback: only this exact host:port is allowed
            "SLIPWAY_SCHEDULER_EGRESS_ALLOW": f"127.0.0.1:{receiver.port}",
            "SLIPWAY_SCHEDULER_WEBHOOK_RETRY_BASE_S": "0.5",
        },
    )


@dataclass
class Tenant:
    owner: User
    org: str
    project: str
    env: str


async def tenant(api: httpx.AsyncClient, project_name: str = "api-shop") -> Tenant:
    owner = await sign_up(api, "Dev")
    org = await create_org(api, owner)
    clusters = (await api.get(f"/organizations/{org}/clusters", headers=owner.auth)).json()
    project = await api.post(
        f"/organizations/{org}/projects", json={"name": project_name}, headers=owner.auth
    )
    assert project.status_code == 201, project.text
    env = await api.post(
        f"/projects/{project.json()['id']}/environments",
        headers=owner.auth,
        json={"name": "prod", "mode": "production", "cluster_id": clusters["items"][0]["id"]},
    )
    assert env.status_code == 201, env.text
    return Tenant(owner, org, project.json()["id"], env.json()["id"])


async def new_webhook(api: httpx.AsyncClient, who: Tenant, **body: Any) -> dict[str, Any]:
    answer = await api.post(f"/organizations/{who.org}/webhooks", json=body, headers=who.owner.auth)
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


async def deliveries(api: httpx.AsyncClient, who: Tenant, webhook_id: str) -> list[Any]:
    answer = await api.get(
        f"/organizations/{who.org}/webhooks/{webhook_id}/deliveries", headers=who.owner.auth
    )
    assert answer.status_code == 200, answer.text
    items: list[Any] = answer.json()["items"]
    return items


async def settled_delivery(api: httpx.AsyncClient, who: Tenant, webhook_id: str) -> Any:
    """The webhook's one delivery once it succeeded; fails when it does not in time."""
    deadline = time.monotonic() + DELIVERY_DEADLINE_S
    items: list[Any] = []
    while time.monotonic() < deadline:
        items = await deliveries(api, who, webhook_id)
        if items and items[0]["status"] == "SUCCEEDED":
            return items[0]
        await asyncio.sleep(0.5)
    raise AssertionError(f"no succeeded delivery within {DELIVERY_DEADLINE_S}s: {items}")


async def test_a_deployment_is_delivered_signed_and_a_failing_receiver_is_retried(
    api, devstack, receiver
) -> None:
    who = await tenant(api)
    tag = uuid.uuid4().hex[:8]
    plain_path, flaky_path, filtered_path = f"/{tag}/plain", f"/{tag}/flaky", f"/{tag}/web"
    receiver.answer(flaky_path, 500, 502)
    plain = await new_webhook(
        api,
        who,
        url=receiver.url(plain_path),
        events=["deployment.queued", "deployment.succeeded"],
        project_pattern="api-*",
        environment_modes=["production"],
    )
    flaky = await new_webhook(
        api, who, url=receiver.url(flaky_path), events=["deployment.succeeded"], format="slack"
    )
    filtered = await new_webhook(
        api,
        who,
        url=receiver.url(filtered_path),
        events=["deployment.succeeded"],
        project_pattern="web-*",
    )

    story = Story(api, who.owner, who.env)
    await story.post(
        f"/environments/{who.env}/services", container(devstack.env["SLIPWAY_BASE_IMAGE"]), 201
    )
    await ready(story, 1)
    deploy = await story.post(f"/environments/{who.env}/deploy")
    assert (await story.settle(deploy["request_id"]))["status"] == "SUCCESS"

    got = await receiver.wait_for(plain_path, 2, DELIVERY_DEADLINE_S)
    documents = [json.loads(r.body) for r in got]
    assert sorted(d["type"] for d in documents) == ["deployment.queued", "deployment.succeeded"]
    for request, document in zip(got, documents, strict=True):
        assert verify(plain["secret"], request.headers["x-slipway-signature"], request.body)
        assert not verify(flaky["secret"], request.headers["x-slipway-signature"], request.body)
        assert document["data"]["deployment_id"] == deploy["request_id"]
        assert document["data"]["project"]["name"] == "api-shop"
        assert document["data"]["environment"] == {
            "id": who.env,
            "name": "prod",
            "mode": "production",
        }

    # the flaky receiver answered 500 and 502, then 200: three attempts of one delivery
    delivery = await settled_delivery(api, who, flaky["id"])
    attempts = delivery["attempt_log"]
    assert [a["response_code"] for a in attempts] == [500, 502, 200]
    assert attempts[0]["next_attempt_at"] and attempts[0]["error"] is None
    flaky_got = receiver.received(flaky_path)
    assert len(flaky_got) == 3 and len({r.body for r in flaky_got}) == 1
    assert all(verify(flaky["secret"], r.headers["x-slipway-signature"], r.body) for r in flaky_got)
    assert json.loads(flaky_got[0].body)["text"].startswith("Deploy of api-shop/prod succeeded")

    # the project filter let nothing through to the third one
    assert await deliveries(api, who, filtered["id"]) == []
    assert receiver.received(filtered_path) == []

    # redeliver: one more request, the same body, signed again
    again = await api.post(
        f"/organizations/{who.org}/webhooks/{flaky['id']}/deliveries/{delivery['id']}/redeliver",
        headers=who.owner.auth,
    )
    assert again.status_code == 202, again.text
    resent = await receiver.wait_for(flaky_path, 4, DELIVERY_DEADLINE_S)
    assert resent[3].body == flaky_got[0].body
    assert verify(flaky["secret"], resent[3].headers["x-slipway-signature"], resent[3].body)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",  # loopback, another port than the allow-listed one
        "http://10.20.30.40/hook",  # private
        "http://169.254.169.254/latest/meta-data",  # cloud metadata
        "http://localhost:9/hook",  # a name that resolves to loopback
    ],
)
async def test_a_private_target_is_refused_without_the_allow_list(api, url) -> None:
    who = await tenant(api)
    answer = await api.post(
        f"/organizations/{who.org}/webhooks",
        json={"url": url, "events": ["deployment.failed"]},
        headers=who.owner.auth,
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == "TARGET_NOT_ALLOWED"
    listed = await api.get(f"/organizations/{who.org}/webhooks", headers=who.owner.auth)
    assert listed.json()["items"] == []


async def test_another_tenants_webhook_and_deliveries_are_not_found(api, receiver) -> None:
    mine, theirs = await tenant(api), await tenant(api, "other")
    hook = await new_webhook(
        api, mine, url=receiver.url(f"/{uuid.uuid4().hex}"), events=["deployment.failed"]
    )
    delivery = str(uuid.uuid4())
    their_org = f"/organizations/{theirs.org}/webhooks/{hook['id']}"
    my_org = f"/organizations/{mine.org}/webhooks/{hook['id']}"
    for method, path in (
        ("GET", f"{their_org}/deliveries"),
        ("POST", f"{their_org}/deliveries/{delivery}/redeliver"),
        ("GET", f"{my_org}/deliveries"),
        ("POST", f"{my_org}/deliveries/{delivery}/redeliver"),
    ):
        answer = await api.request(method, path, headers=theirs.owner.auth)
        assert answer.status_code == 404, f"{method} {path}: {answer.status_code} {answer.text}"
    # the owner reads its own (empty) log
    assert await deliveries(api, mine, hook["id"]) == []
