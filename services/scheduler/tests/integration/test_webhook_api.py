"""The internal webhook routes against the real PostgreSQL: the secret is shown once and
sealed at rest, validation answers stable 4xx codes, another organization sees none of them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from services.scheduler.tests.integration.test_schedule_api import member_of
from slipway_libs.crypto import Sealer, new_key_setting
from slipway_libs.egress import EgressPolicy
from slipway_libs.http import create_app
from slipway_scheduler.adapters.clock import SystemClock
from slipway_scheduler.api.webhooks import build_webhook_router
from slipway_scheduler.usecases.webhooks import WebhookDeps

pytestmark = pytest.mark.integration

SEALER = Sealer.from_setting(new_key_setting("t1"))
# a public address: nothing connects to it (creating a webhook sends nothing)
PUBLIC = "https://8.8.8.8/hooks/slipway"


@pytest.fixture
async def api(pool) -> AsyncIterator[httpx.AsyncClient]:
    deps = WebhookDeps(sealer=SEALER, egress=EgressPolicy.from_setting("127.0.0.1:9"))
    router = build_webhook_router(pool, {}, deps, SystemClock())
    app = create_app(service="scheduler", routers=[router])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://scheduler/internal/v1"
    ) as client:
        yield client


async def test_a_webhook_shows_its_secret_once_and_keeps_it_sealed(pool, api) -> None:
    org = uuid.uuid4()
    path = f"/organizations/{org}/webhooks"
    body = {
        "url": PUBLIC,
        "events": ["deployment.succeeded", "deployment.failed"],
        "project_pattern": "api-*",
        "environment_modes": ["production"],
        "format": "slack",
    }
    created = await api.post(path, json=body, headers=member_of(org))
    assert created.status_code == 201, created.text
    hook = created.json()
    secret = hook.pop("secret")
    assert secret.startswith("whsec_") and len(secret) > 40
    assert hook["events"] == ["deployment.failed", "deployment.succeeded"]
    assert (hook["project_pattern"], hook["environment_modes"], hook["format"]) == (
        "api-*",
        ["production"],
        "slack",
    )

    read = await api.get(f"{path}/{hook['id']}", headers=member_of(org))
    assert read.status_code == 200 and read.json() == hook
    listed = await api.get(path, headers=member_of(org))
    assert listed.json()["items"] == [hook]
    assert secret not in read.text + listed.text

    async with pool.acquire() as conn:
        sealed = await conn.fetchval(
            "SELECT secret_sealed FROM webhooks WHERE id = $1", uuid.UUID(hook["id"])
        )
    assert secret.encode() not in bytes(sealed)
    assert SEALER.open(bytes(sealed), aad=uuid.UUID(hook["id"]).bytes) == secret.encode()

    deleted = await api.delete(f"{path}/{hook['id']}", headers=member_of(org))
    assert deleted.status_code == 204
    gone = await api.get(f"{path}/{hook['id']}", headers=member_of(org))
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "WEBHOOK_NOT_FOUND"
    again = await api.delete(f"{path}/{hook['id']}", headers=member_of(org))
    assert again.status_code == 404


async def test_another_organization_sees_none_of_them(api) -> None:
    org, other = uuid.uuid4(), uuid.uuid4()
    created = await api.post(
        f"/organizations/{org}/webhooks",
        json={"url": PUBLIC, "events": ["deployment.queued"]},
        headers=member_of(org),
    )
    assert created.status_code == 201, created.text
    hook_id = created.json()["id"]

    # its own path, naming the other organization's webhook
    for method in ("GET", "DELETE"):
        answer = await api.request(
            method, f"/organizations/{other}/webhooks/{hook_id}", headers=member_of(other)
        )
        assert answer.status_code == 404, answer.text
        assert answer.json()["error"]["code"] == "WEBHOOK_NOT_FOUND"
    listed = await api.get(f"/organizations/{other}/webhooks", headers=member_of(other))
    assert listed.json()["items"] == []
    # the other organization's path, with this caller's credentials
    foreign = await api.get(f"/organizations/{org}/webhooks", headers=member_of(other))
    assert foreign.status_code == 404
    still = await api.get(f"/organizations/{org}/webhooks/{hook_id}", headers=member_of(org))
    assert still.status_code == 200


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"url": "ftp://example.com/x", "events": ["deployment.failed"]}, "INVALID_WEBHOOK_URL"),
        (
            {"url": "https://u:p@example.com/", "events": ["deployment.failed"]},
            "INVALID_WEBHOOK_URL",
        ),
        ({"url": PUBLIC, "events": []}, "INVALID_WEBHOOK_EVENT"),
        ({"url": PUBLIC, "events": ["build.done"]}, "INVALID_WEBHOOK_EVENT"),
        (
            {"url": PUBLIC, "events": ["deployment.failed"], "format": "xml"},
            "INVALID_WEBHOOK_FORMAT",
        ),
        (
            {"url": PUBLIC, "events": ["deployment.failed"], "environment_modes": ["prod"]},
            "INVALID_ENVIRONMENT_MODE",
        ),
        # loopback, private, link-local (cloud metadata) targets, unless allow-listed
        ({"url": "http://127.0.0.1:8080/", "events": ["deployment.failed"]}, "TARGET_NOT_ALLOWED"),
        ({"url": "http://10.1.2.3/", "events": ["deployment.failed"]}, "TARGET_NOT_ALLOWED"),
        ({"url": "http://192.168.0.1/", "events": ["deployment.failed"]}, "TARGET_NOT_ALLOWED"),
        ({"url": "http://169.254.169.254/", "events": ["deployment.failed"]}, "TARGET_NOT_ALLOWED"),
        ({"url": "http://[::1]:8080/", "events": ["deployment.failed"]}, "TARGET_NOT_ALLOWED"),
        ({"url": "http://localhost:8080/", "events": ["deployment.failed"]}, "TARGET_NOT_ALLOWED"),
    ],
)
async def test_bad_webhooks_are_refused_with_a_stable_code(api, body, code) -> None:
    org = uuid.uuid4()
    answer = await api.post(f"/organizations/{org}/webhooks", json=body, headers=member_of(org))
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == code
    listed = await api.get(f"/organizations/{org}/webhooks", headers=member_of(org))
    assert listed.json()["items"] == []


async def test_an_allow_listed_local_target_is_accepted(api) -> None:
    org = uuid.uuid4()
    body = {"url": "http://127.0.0.1:9/receiver", "events": ["environment.stopped"]}
    answer = await api.post(f"/organizations/{org}/webhooks", json=body, headers=member_of(org))
    assert answer.status_code == 201, answer.text


async def test_malformed_bodies_answer_422(api) -> None:
    org = uuid.uuid4()
    for body in ({"events": ["deployment.failed"]}, {"url": PUBLIC, "events": "x", "extra": 1}):
        answer = await api.post(f"/organizations/{org}/webhooks", json=body, headers=member_of(org))
        assert answer.status_code == 422, answer.text
    bad_id = await api.get(f"/organizations/{org}/webhooks/nope", headers=member_of(org))
    assert bad_id.status_code == 422
