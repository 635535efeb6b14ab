"""Git webhook endpoints against the real PostgreSQL: a signed push becomes one deploy command
per matching application of the endpoint's organization (none for another branch, another
repository, auto_deploy off, or another organization), a bad signature records nothing, a
redelivered delivery triggers nothing again, and the management routes show the secret once
and only to its organization."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from services.scheduler.tests.integration.conftest import Catalog, HandClock
from services.scheduler.tests.integration.test_schedule_api import member_of
from services.scheduler.tests.integration.test_timers import commands as outbox_rows
from services.scheduler.tests.integration.test_timers import project
from slipway_contracts import Envelope
from slipway_contracts.events import catalog as ev
from slipway_libs.crypto import Sealer, new_key_setting
from slipway_libs.http import create_app
from slipway_scheduler.api.git_webhooks import build_git_webhook_router
from slipway_scheduler.domain import git_hooks
from slipway_scheduler.domain.git_hooks import Provider
from slipway_scheduler.usecases.git_pushes import GitHookDeps

pytestmark = pytest.mark.integration

SEALER = Sealer.from_setting(new_key_setting("t1"))
REPO = "https://github.com/acme/shop.git"
NEW_COMMIT = "scheduler.NewCommitAvailable"


@pytest.fixture
async def api(pool, clock) -> AsyncIterator[httpx.AsyncClient]:
    router = build_git_webhook_router(pool, {}, GitHookDeps(sealer=SEALER, clock=clock))
    app = create_app(service="scheduler", routers=[router])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://scheduler/internal/v1"
    ) as client:
        yield client


def application(
    catalog: Catalog,
    service_id: uuid.UUID,
    *,
    url: str = REPO,
    branch: str = "main",
    auto_deploy: bool = True,
    deleted: bool = False,
) -> Envelope:
    return catalog._event(
        ev.ServiceChanged(
            service_id=service_id,
            organization_id=catalog.organization_id,
            project_id=catalog.project_id,
            environment_id=catalog.environment_id,
            name=f"app-{service_id.hex[:6]}",
            kind="application",
            spec={
                "kind": "application",
                "git": {"url": url, "branch": branch, "root_path": "/"},
                "auto_deploy": auto_deploy,
            },
            deleted=deleted,
            version=catalog._version(service_id),
        )
    )


def push_body(branch: str = "main", commit: str = "ab" * 20) -> bytes:
    return json.dumps(
        {
            "ref": f"refs/heads/{branch}",
            "after": commit,
            "repository": {
                "clone_url": "https://github.com/acme/shop.git",
                "ssh_url": "git@github.com:acme/shop.git",
            },
        }
    ).encode()


def github(
    body: bytes, secret: str, delivery: str | None = None, event: str = "push"
) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "x-github-event": event,
        "x-github-delivery": delivery or str(uuid.uuid4()),
        "x-hub-signature-256": git_hooks.sign(Provider.GITHUB, secret, body),
    }


async def commands(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    """What the scheduler asked others to do (not its audit lines, nor the new commits it
    tells the deployer of: ``new_commits``)."""
    return [
        row
        for row in await outbox_rows(pool)
        if row["topic"] == "scheduler.command.v1" and row["type"] != NEW_COMMIT
    ]


async def new_commits(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    return [row for row in await outbox_rows(pool) if row["type"] == NEW_COMMIT]


async def new_hook(api: httpx.AsyncClient, org: uuid.UUID) -> dict[str, Any]:
    created = await api.post(
        f"/organizations/{org}/git-webhooks", json={"description": "shop"}, headers=member_of(org)
    )
    assert created.status_code == 201, created.text
    hook: dict[str, Any] = created.json()
    return hook


async def deliveries(api: httpx.AsyncClient, org: uuid.UUID, hook_id: str) -> list[Any]:
    answer = await api.get(
        f"/organizations/{org}/git-webhooks/{hook_id}/deliveries", headers=member_of(org)
    )
    assert answer.status_code == 200, answer.text
    items: list[Any] = answer.json()["items"]
    return items


async def test_a_signed_push_deploys_the_matching_applications_once(
    pool: asyncpg.Pool, api: httpx.AsyncClient, clock: HandClock
) -> None:
    shop, other_org = Catalog(), Catalog()
    matching, other_branch, other_repo, manual = (uuid.uuid4() for _ in range(4))
    elsewhere = uuid.uuid4()
    await project(
        pool,
        clock,
        application(shop, matching, url="git@github.com:acme/shop.git"),
        application(shop, other_branch, branch="develop"),
        application(shop, other_repo, url="https://github.com/acme/shop-api.git"),
        application(shop, manual, auto_deploy=False),
        application(other_org, elsewhere),  # the same repository, another organization
    )
    hook = await new_hook(api, shop.organization_id)
    body, commit = push_body(commit="ab" * 20), "ab" * 20
    headers = github(body, hook["secret"], delivery="delivery-1")

    answer = await api.post(f"/hooks/git/{hook['id']}", content=body, headers=headers)
    assert answer.status_code == 202, answer.text
    record = answer.json()
    assert (record["result"], record["duplicate"], record["commit"]) == ("deployed", False, commit)
    assert record["triggered"] == [
        {"service_id": str(matching), "environment_id": str(shop.environment_id)}
    ]
    sent = await commands(pool)
    assert [(c["type"], c["service_id"], c["commit"], c["trigger"]) for c in sent] == [
        ("scheduler.ServiceDeployRequested", str(matching), commit, "git_push")
    ]
    assert sent[0]["topic"] == "scheduler.command.v1"
    [news] = await new_commits(pool)  # auto_deploy on or off, both are out of date now
    assert (news["environment_id"], set(news["service_ids"]), news["commit"]) == (
        str(shop.environment_id),
        {str(matching), str(manual)},
        commit,
    )

    again = await api.post(f"/hooks/git/{hook['id']}", content=body, headers=headers)
    assert again.status_code == 202 and again.json()["duplicate"] is True
    assert again.json()["id"] == record["id"]
    assert len(await commands(pool)) == 1, "a redelivered delivery triggered again"
    assert len(await new_commits(pool)) == 1
    assert [d["delivery_id"] for d in await deliveries(api, shop.organization_id, hook["id"])] == [
        "delivery-1"
    ]


async def test_a_bad_signature_is_refused_and_records_nothing(
    pool: asyncpg.Pool, api: httpx.AsyncClient, clock: HandClock
) -> None:
    shop = Catalog()
    await project(pool, clock, application(shop, uuid.uuid4()))
    hook = await new_hook(api, shop.organization_id)
    body = push_body()
    for headers in (
        github(body, "not-the-secret"),
        {k: v for k, v in github(body, hook["secret"]).items() if k != "x-hub-signature-256"},
        {**github(body, hook["secret"]), "x-hub-signature-256": "sha256=zz"},
    ):
        answer = await api.post(f"/hooks/git/{hook['id']}", content=body, headers=headers)
        assert answer.status_code == 401, answer.text
        assert answer.json()["error"]["code"] == "INVALID_SIGNATURE"
    tampered = await api.post(
        f"/hooks/git/{hook['id']}", content=body + b" ", headers=github(body, hook["secret"])
    )
    assert tampered.status_code == 401
    assert await commands(pool) == []
    assert await deliveries(api, shop.organization_id, hook["id"]) == []
    unknown = await api.post(f"/hooks/git/{uuid.uuid4()}", content=body, headers=github(body, "x"))
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "GIT_WEBHOOK_NOT_FOUND"
    nameless = await api.post(f"/hooks/git/{hook['id']}", content=body)
    assert nameless.status_code == 400
    assert nameless.json()["error"]["code"] == "UNKNOWN_GIT_PROVIDER"


async def test_other_branches_tags_pings_and_deleted_apps_trigger_nothing(
    pool: asyncpg.Pool, api: httpx.AsyncClient, clock: HandClock
) -> None:
    shop = Catalog()
    live, gone = uuid.uuid4(), uuid.uuid4()
    await project(pool, clock, application(shop, live), application(shop, gone, branch="release"))
    await project(pool, clock, application(shop, gone, branch="release", deleted=True))
    hook = await new_hook(api, shop.organization_id)
    sent = [
        (push_body(branch="develop"), "push"),
        (push_body(branch="release"), "push"),
        (push_body(branch="main").replace(b"refs/heads/main", b"refs/tags/v1"), "push"),
        (b'{"zen": "Keep it logically awesome."}', "ping"),
    ]
    for body, event in sent:
        answer = await api.post(
            f"/hooks/git/{hook['id']}",
            content=body,
            headers=github(body, hook["secret"], event=event),
        )
        assert answer.status_code == 202, answer.text
    assert await commands(pool) == []
    results = [d["result"] for d in await deliveries(api, shop.organization_id, hook["id"])]
    assert sorted(results) == ["ignored", "no_match", "no_match", "ping"]

    # GitLab and Gitea pushes, signed their way, deploy the same application
    for provider, headers in (
        (Provider.GITLAB, ("x-gitlab-event", "Push Hook", "x-gitlab-event-uuid", "x-gitlab-token")),
        (Provider.GITEA, ("x-gitea-event", "push", "x-gitea-delivery", "x-gitea-signature")),
    ):
        body = push_body(commit="cd" * 20)
        event_header, event, id_header, signature_header = headers
        answer = await api.post(
            f"/hooks/git/{hook['id']}",
            content=body,
            headers={
                event_header: event,
                id_header: str(uuid.uuid4()),
                signature_header: git_hooks.sign(provider, hook["secret"], body),
            },
        )
        assert answer.status_code == 202 and answer.json()["result"] == "deployed", answer.text
    assert [c["service_id"] for c in await commands(pool)] == [str(live), str(live)]


async def test_endpoints_show_their_secret_once_and_only_to_their_organization(
    pool: asyncpg.Pool, api: httpx.AsyncClient
) -> None:
    org, stranger = uuid.uuid4(), uuid.uuid4()
    path = f"/organizations/{org}/git-webhooks"
    hook = await new_hook(api, org)
    secret = hook.pop("secret")
    assert secret.startswith("ghsec_") and hook["path"] == f"/api/v1/hooks/git/{hook['id']}"
    read = await api.get(f"{path}/{hook['id']}", headers=member_of(org))
    listed = await api.get(path, headers=member_of(org))
    assert read.json() == hook and listed.json()["items"] == [hook]
    assert secret not in read.text + listed.text
    async with pool.acquire() as conn:
        sealed = await conn.fetchval(
            "SELECT secret_sealed FROM git_webhooks WHERE id = $1", uuid.UUID(hook["id"])
        )
    assert SEALER.open(bytes(sealed), aad=uuid.UUID(hook["id"]).bytes) == secret.encode()

    theirs = f"/organizations/{stranger}/git-webhooks"
    assert (await api.get(theirs, headers=member_of(stranger))).json()["items"] == []
    for answer in (
        await api.get(f"{theirs}/{hook['id']}", headers=member_of(stranger)),
        await api.get(f"{theirs}/{hook['id']}/deliveries", headers=member_of(stranger)),
        await api.delete(f"{theirs}/{hook['id']}", headers=member_of(stranger)),
        await api.get(f"{path}/{hook['id']}", headers=member_of(stranger)),
    ):
        assert answer.status_code == 404, answer.text
    assert (await api.delete(f"{path}/{hook['id']}", headers=member_of(org))).status_code == 204
    audited = [
        (row["action"], row["target_id"], row["organization_id"])
        for row in await outbox_rows(pool)
        if row["type"] == "scheduler.AuditRecorded"
    ]
    assert audited == [("CREATE", hook["id"], str(org)), ("DELETE", hook["id"], str(org))]
    gone = await api.get(f"{path}/{hook['id']}", headers=member_of(org))
    assert gone.json()["error"]["code"] == "GIT_WEBHOOK_NOT_FOUND"
