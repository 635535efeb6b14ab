"""Pull requests against the real PostgreSQL: opened against the branch of an environment
whose rule has ``auto_preview``, a pull request asks the catalog for a preview environment
(an id chosen once); a reopen or a repeat asks nothing more; a push asks for the new head in
the same preview; closing deletes it; a preview past its time to live is deleted by the expiry
round; environments without ``auto_preview``, previews themselves and other branches are no
blueprints. And path filters: a push whose changed files match no filter deploys nothing."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from services.scheduler.tests.integration.conftest import Catalog, HandClock
from services.scheduler.tests.integration.test_git_webhooks import (
    REPO,
    SEALER,
    application,
    commands,
    deliveries,
    github,
    new_commits,
    new_hook,
    push_body,
)
from services.scheduler.tests.integration.test_timers import project
from slipway_contracts import Envelope
from slipway_contracts.events import catalog as ev
from slipway_libs import db
from slipway_libs.http import create_app
from slipway_scheduler.api.git_webhooks import build_git_webhook_router
from slipway_scheduler.usecases import previewing
from slipway_scheduler.usecases.git_pushes import GitHookDeps

pytestmark = pytest.mark.integration

TTL = timedelta(hours=2)
HEAD_1, HEAD_2 = "1a" * 20, "2b" * 20


@pytest.fixture
async def api(pool, clock) -> AsyncIterator[httpx.AsyncClient]:
    deps = GitHookDeps(sealer=SEALER, clock=clock, preview_ttl=TTL)
    app = create_app(service="scheduler", routers=[build_git_webhook_router(pool, {}, deps)])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://scheduler/internal/v1"
    ) as client:
        yield client


def environment(catalog: Catalog, mode: str = "staging") -> Envelope:
    return catalog._event(
        ev.EnvironmentChanged(
            environment_id=catalog.environment_id,
            organization_id=catalog.organization_id,
            project_id=catalog.project_id,
            name=f"env-{catalog.environment_id.hex[:6]}",
            mode=mode,
            cluster_id=uuid.uuid4(),
            version=catalog._version(catalog.environment_id),
        )
    )


def blueprint(
    catalog: Catalog, app: uuid.UUID, *, auto_preview: bool = True, mode: str = "staging"
) -> list[Envelope]:
    return [
        environment(catalog, mode),
        application(catalog, app),
        catalog.rule(auto_preview=auto_preview),
    ]


def pull_request(
    action: str,
    number: int = 42,
    head: str = HEAD_1,
    base: str = "main",
    head_repo: dict[str, str] | None = None,
) -> bytes:
    repo = {"clone_url": REPO, "ssh_url": "git@github.com:acme/shop.git"}
    return json.dumps(
        {
            "action": action,
            "number": number,
            "pull_request": {
                "number": number,
                "head": {"ref": "feature", "sha": head, "repo": head_repo or repo},
                "base": {"ref": base, "repo": repo},
            },
            "repository": repo,
        }
    ).encode()


async def deliver(
    api: httpx.AsyncClient, hook: dict[str, Any], body: bytes, event: str = "pull_request"
) -> dict[str, Any]:
    answer = await api.post(
        f"/hooks/git/{hook['id']}", content=body, headers=github(body, hook["secret"], event=event)
    )
    assert answer.status_code == 202, answer.text
    record: dict[str, Any] = answer.json()
    return record


async def test_a_pull_request_opens_updates_and_closes_one_preview(
    pool: asyncpg.Pool, api: httpx.AsyncClient, clock: HandClock
) -> None:
    shop, app = Catalog(), uuid.uuid4()
    await project(pool, clock, *blueprint(shop, app))
    hook = await new_hook(api, shop.organization_id)

    opened = await deliver(api, hook, pull_request("opened"))
    assert (opened["result"], opened["branch"], opened["commit"]) == (
        "preview_opened",
        "feature",
        HEAD_1,
    )
    [entry] = opened["triggered"]
    preview_env = entry["environment_id"]
    assert entry == {
        "environment_id": preview_env,
        "blueprint_environment_id": str(shop.environment_id),
        "pull_request": 42,
        "action": "create",
    }
    [asked] = await commands(pool)
    assert asked["type"] == "scheduler.PreviewRequested"
    assert (asked["environment_id"], asked["blueprint_environment_id"], asked["name"]) == (
        preview_env,
        str(shop.environment_id),
        "pr-42",
    )
    assert (asked["service_ids"], asked["branch"]) == ([str(app)], "feature")
    assert asked["commit"] == HEAD_1

    reopened = await deliver(api, hook, pull_request("reopened"))
    assert (reopened["result"], reopened["triggered"]) == ("no_match", [])
    assert len(await commands(pool)) == 1, "a reopen of an open preview at its commit asked again"

    pushed = await deliver(api, hook, pull_request("synchronize", head=HEAD_2))
    assert pushed["result"] == "preview_updated"
    assert pushed["triggered"][0]["environment_id"] == preview_env
    update = (await commands(pool))[-1]
    assert (update["type"], update["environment_id"], update["commit"]) == (
        "scheduler.PreviewRequested",
        preview_env,
        HEAD_2,
    )

    closed = await deliver(api, hook, pull_request("closed", head=HEAD_2))
    assert closed["result"] == "preview_closed"
    deletion = (await commands(pool))[-1]
    assert (deletion["type"], deletion["environment_id"], deletion["reason"]) == (
        "scheduler.PreviewDeletionRequested",
        preview_env,
        "closed",
    )
    again = await deliver(api, hook, pull_request("closed", head=HEAD_2))
    assert again["result"] == "no_match" and len(await commands(pool)) == 3

    reopened = await deliver(api, hook, pull_request("reopened", head=HEAD_2))
    assert reopened["result"] == "preview_opened"
    fresh = (await commands(pool))[-1]
    assert fresh["type"] == "scheduler.PreviewRequested"
    assert fresh["environment_id"] != preview_env, "a closed preview's environment came back"


async def test_only_auto_preview_environments_of_the_base_branch_are_blueprints(
    pool: asyncpg.Pool, api: httpx.AsyncClient, clock: HandClock
) -> None:
    shop, manual, preview = Catalog(), Catalog(), Catalog()
    manual.organization_id = preview.organization_id = shop.organization_id
    await project(
        pool,
        clock,
        *blueprint(shop, uuid.uuid4()),
        *blueprint(manual, uuid.uuid4(), auto_preview=False),
        *blueprint(preview, uuid.uuid4(), mode="preview"),  # a preview is no blueprint
    )
    hook = await new_hook(api, shop.organization_id)
    other_base = await deliver(api, hook, pull_request("opened", base="develop"))
    assert other_base["result"] == "no_match" and await commands(pool) == []
    labeled = await deliver(api, hook, pull_request("labeled"))
    assert labeled["result"] == "ignored"
    opened = await deliver(api, hook, pull_request("opened", number=9))
    assert [t["blueprint_environment_id"] for t in opened["triggered"]] == [
        str(shop.environment_id)
    ]


async def test_a_pull_request_from_a_fork_previews_nothing_and_its_record_says_why(
    pool: asyncpg.Pool, api: httpx.AsyncClient, clock: HandClock
) -> None:
    shop = Catalog()
    await project(pool, clock, *blueprint(shop, uuid.uuid4()))
    hook = await new_hook(api, shop.organization_id)
    fork = {"clone_url": "https://github.com/outsider/shop.git"}
    for action in ("opened", "synchronize", "closed"):
        record = await deliver(api, hook, pull_request(action, head_repo=fork))
        assert (record["result"], record["triggered"]) == ("fork_refused", []), record
    assert await commands(pool) == [], "a fork's pull request asked for a preview"
    log = await deliveries(api, shop.organization_id, hook["id"])
    assert [d["result"] for d in log] == ["fork_refused"] * 3
    # the same pull request from the repository itself is previewed
    inside = await deliver(api, hook, pull_request("opened", number=43))
    assert inside["result"] == "preview_opened"


async def test_a_preview_past_its_time_to_live_is_deleted_once(
    pool: asyncpg.Pool, api: httpx.AsyncClient, clock: HandClock
) -> None:
    shop = Catalog()
    await project(pool, clock, *blueprint(shop, uuid.uuid4()))
    hook = await new_hook(api, shop.organization_id)
    opened = await deliver(api, hook, pull_request("opened"))
    preview_env = opened["triggered"][0]["environment_id"]

    async def expire() -> int:
        async with db.transaction(pool) as conn:
            return await previewing.expire_due(conn, clock, limit=10)

    clock.advance(seconds=TTL.total_seconds() - 1)
    assert await expire() == 0
    clock.advance(seconds=2)
    assert await expire() == 1
    assert await expire() == 0, "an expired preview was deleted twice"
    deletion = (await commands(pool))[-1]
    assert (deletion["type"], deletion["environment_id"], deletion["reason"]) == (
        "scheduler.PreviewDeletionRequested",
        preview_env,
        "expired",
    )
    closed = await deliver(api, hook, pull_request("closed"))
    assert closed["result"] == "no_match", "an expired preview was closed again"


async def test_a_push_deploys_an_application_only_when_a_changed_file_matches_its_filters(
    pool: asyncpg.Pool, api: httpx.AsyncClient, clock: HandClock
) -> None:
    shop, filtered = Catalog(), uuid.uuid4()
    event = application(shop, filtered)
    event.data["spec"]["path_filters"] = ["src/**"]
    await project(pool, clock, event)
    hook = await new_hook(api, shop.organization_id)

    def touching(*paths: str) -> bytes:
        body = json.loads(push_body())
        body["commits"] = [{"added": [], "modified": list(paths), "removed": []}]
        return json.dumps(body).encode()

    docs = await deliver(api, hook, touching("docs/a.md", "README.md"), event="push")
    assert (docs["result"], docs["triggered"]) == ("filtered", [])
    assert await commands(pool) == []
    # not deployed, but out of date: the deployer hears of the new commit
    [news] = await new_commits(pool)
    assert (news["environment_id"], news["service_ids"], news["commit"]) == (
        str(shop.environment_id),
        [str(filtered)],
        "ab" * 20,
    )
    assert news["pushed_at"].startswith(clock.now().date().isoformat())
    code = await deliver(api, hook, touching("docs/a.md", "src/app.py"), event="push")
    assert code["result"] == "deployed"
    assert [c["service_id"] for c in await commands(pool)] == [str(filtered)]


async def test_the_blueprint_rule_says_how_long_its_previews_live(
    pool: asyncpg.Pool, api: httpx.AsyncClient, clock: HandClock
) -> None:
    shop = Catalog()
    await project(
        pool,
        clock,
        environment(shop),
        application(shop, uuid.uuid4()),
        shop.rule(auto_preview=True, preview_ttl_hours=1),  # shorter than the default, TTL
    )
    hook = await new_hook(api, shop.organization_id)
    assert (await deliver(api, hook, pull_request("opened")))["result"] == "preview_opened"
    clock.advance(minutes=61)
    async with db.transaction(pool) as conn:
        assert await previewing.expire_due(conn, clock, limit=10) == 1
