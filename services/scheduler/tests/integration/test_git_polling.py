"""Polling remotes for new commits, against the real PostgreSQL (and, last, real git over https
to a private forge): a deployed application's branch is polled; its first head is announced
without a deploy, a moved head is announced and deployed where ``auto_deploy`` is on, the same
head is nothing; failures back off and are recorded; a branch is polled by one process at a
time; a webhook's push makes the poll that follows send nothing again; a private repository is
polled with the organization's credential, and refused clearly without it; a local repository
under SLIPWAY_GIT_LOCAL_ROOTS is polled with real git, one outside them refused once and asked
again only after the backoff cap."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest

from services.scheduler.tests.integration.conftest import Catalog, HandClock
from services.scheduler.tests.integration.test_git_webhooks import (
    REPO,
    SEALER,
    application,
    commands,
    github,
    new_commits,
    new_hook,
    push_body,
)
from services.scheduler.tests.integration.test_schedule_api import member_of
from services.scheduler.tests.integration.test_timers import project
from slipway_contracts import new_event
from slipway_contracts.events import catalog as ev
from slipway_libs import db
from slipway_libs.crypto import Sealer, new_key_setting
from slipway_libs.egress import EgressPolicy
from slipway_libs.http import create_app
from slipway_libs.testing.git_server import (
    PrivateForge,
    committed,
    git,
    private_forge,
    publish_bare,
)
from slipway_scheduler.adapters.git_remote import GitRemote
from slipway_scheduler.api.git_webhooks import build_git_webhook_router
from slipway_scheduler.db import poll_queries
from slipway_scheduler.domain.git_polling import PollError, PollPolicy, Secret
from slipway_scheduler.usecases import git_credentials, git_polling
from slipway_scheduler.usecases.git_pushes import GitHookDeps

pytestmark = pytest.mark.integration

HEAD_1, HEAD_2 = "1a" * 20, "2b" * 20
POLICY = PollPolicy(
    interval=timedelta(seconds=180),
    backoff_cap=timedelta(seconds=1000),
    webhook_quiet=timedelta(hours=1),
    lease=timedelta(seconds=60),
)
TRANSPORT = Sealer.from_setting(new_key_setting("tr"))


@dataclass
class Remote:
    """A remote whose branch heads the test sets; it counts the polls it answers."""

    heads: dict[tuple[str, str], str] = field(default_factory=dict)
    failure: PollError | None = None
    asked: list[tuple[str, str, Secret]] = field(default_factory=list)
    delay_s: float = 0.0

    async def head(self, url: str, branch: str, secret: Secret) -> str:
        self.asked.append((url, branch, secret))
        await asyncio.sleep(self.delay_s)
        if self.failure is not None:
            raise self.failure
        return self.heads[url, branch]


def deps(remote: Remote | GitRemote, clock: HandClock) -> git_polling.PollDeps:
    return git_polling.PollDeps(remote=remote, clock=clock, policy=POLICY, transport=TRANSPORT)


async def poll_round(pool: asyncpg.Pool, poll_deps: git_polling.PollDeps) -> int:
    await git_polling.discover(pool, poll_deps.clock)
    return await git_polling.poll_due(pool, poll_deps, limit=50, concurrency=4)


async def state(pool: asyncpg.Pool, org: uuid.UUID) -> list[poll_queries.PollState]:
    async with db.transaction(pool) as conn:
        return await poll_queries.poll_states(conn, org)


async def deploys(pool: asyncpg.Pool) -> list[tuple[str, str]]:
    return [
        (c["service_id"], c["commit"])
        for c in await commands(pool)
        if c["type"] == "scheduler.ServiceDeployRequested"
    ]


async def test_a_deployed_branch_is_polled_and_a_new_head_takes_the_path_of_a_push(
    pool: asyncpg.Pool, clock: HandClock
) -> None:
    shop, staging = Catalog(), Catalog()
    staging.organization_id = shop.organization_id
    web, worker, manual, undeployed = (uuid.uuid4() for _ in range(4))
    await project(
        pool,
        clock,
        application(shop, web),
        application(shop, worker, url="git@github.com:acme/shop.git"),  # the same repository
        application(staging, manual, auto_deploy=False),
        application(shop, undeployed, url="https://github.com/acme/other.git"),
        shop.service_status(web),
        staging.service_status(manual),
    )
    remote = Remote(heads={(REPO, "main"): HEAD_1})
    poll = deps(remote, clock)

    assert await poll_round(pool, poll) == 1  # one branch: the undeployed repository is not
    assert [(url, branch) for url, branch, _ in remote.asked] == [(REPO, "main")]
    assert await deploys(pool) == [], "the first head seen deployed what may already run"
    announced = {(n["environment_id"], n["commit"]) for n in await new_commits(pool)}
    assert announced == {(str(shop.environment_id), HEAD_1), (str(staging.environment_id), HEAD_1)}

    assert await poll_round(pool, poll) == 0, "polled again before its interval"
    clock.advance(seconds=180)
    assert await poll_round(pool, poll) == 1
    assert len(await new_commits(pool)) == 2, "the same head was announced again"

    remote.heads[REPO, "main"] = HEAD_2
    clock.advance(seconds=180)
    await poll_round(pool, poll)
    assert sorted(await deploys(pool)) == sorted([(str(web), HEAD_2), (str(worker), HEAD_2)])
    news = [n for n in await new_commits(pool) if n["commit"] == HEAD_2]
    assert {n["environment_id"] for n in news} == {
        str(shop.environment_id),
        str(staging.environment_id),
    }
    ids = {c["delivery_id"] for c in await commands(pool)}
    assert len(ids) == 1, "one poll's deploys name one id"
    [row] = await state(pool, shop.organization_id)
    assert (row.branch, row.last_commit, row.failures, row.last_error) == ("main", HEAD_2, 0, None)


async def test_failures_back_off_are_recorded_and_a_success_clears_them(
    pool: asyncpg.Pool, clock: HandClock
) -> None:
    shop, web = Catalog(), uuid.uuid4()
    await project(pool, clock, application(shop, web), shop.service_status(web))
    remote = Remote(failure=PollError("UNREACHABLE", "git ls-remote of github.com failed"))
    poll = deps(remote, clock)
    waits = []
    for _ in range(4):
        assert await poll_round(pool, poll) == 1
        async with pool.acquire() as conn:
            due = await poll_queries.next_due(conn)
        assert due is not None
        waits.append((due - clock.now()).total_seconds())
        clock.advance(seconds=waits[-1] - 1)
        assert await poll_round(pool, poll) == 0, "polled again before its backoff"
        clock.advance(seconds=1)
    assert waits == [180, 360, 720, 1000]
    [row] = await state(pool, shop.organization_id)
    assert row.failures == 4
    assert row.last_error == "UNREACHABLE: git ls-remote of github.com failed"
    assert await new_commits(pool) == []
    remote.failure, remote.heads[REPO, "main"] = None, HEAD_1
    await poll_round(pool, poll)
    [row] = await state(pool, shop.organization_id)
    assert (row.failures, row.last_commit) == (0, HEAD_1)
    assert row.last_error is not None, "the last error stays readable after a success"
    # and the organization reads it through the API (the route binds the organization: last)
    router = build_git_webhook_router(pool, {}, GitHookDeps(sealer=SEALER, clock=clock))
    app = create_app(service="scheduler", routers=[router])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://scheduler/internal/v1"
    ) as api:
        org = shop.organization_id
        answer = await api.get(f"/organizations/{org}/git-polls", headers=member_of(org))
        assert answer.status_code == 200, answer.text
        [shown] = answer.json()["items"]
        assert (shown["repository"], shown["branch"], shown["failures"]) == (
            "github.com/acme/shop",
            "main",
            0,
        )
        assert shown["last_error"] == row.last_error and shown["last_commit"] == HEAD_1
        other = uuid.uuid4()  # another organization sees none of it
        elsewhere = await api.get(f"/organizations/{other}/git-polls", headers=member_of(other))
        assert elsewhere.json()["items"] == []


async def test_two_processes_never_poll_one_branch_together(
    pool: asyncpg.Pool, clock: HandClock, scheduler_db: tuple[str, asyncpg.Pool]
) -> None:
    shop = Catalog()
    apps = [uuid.uuid4() for _ in range(6)]
    events = []
    for i, app in enumerate(apps):
        events += [application(shop, app, branch=f"b{i}"), shop.service_status(app)]
    await project(pool, clock, *events)
    remote = Remote(heads={(REPO, f"b{i}"): HEAD_1 for i in range(6)}, delay_s=0.2)
    other_pool = await db.create_pool(scheduler_db[0], max_size=4)
    try:
        await git_polling.discover(pool, clock)
        polled = await asyncio.gather(
            git_polling.poll_due(pool, deps(remote, clock), limit=4, concurrency=4),
            git_polling.poll_due(other_pool, deps(remote, clock), limit=4, concurrency=4),
        )
    finally:
        await other_pool.close()
    assert sum(polled) == 6
    assert sorted(branch for _, branch, _ in remote.asked) == [f"b{i}" for i in range(6)]


async def test_after_a_webhooks_push_polling_waits_and_sends_nothing_again(
    pool: asyncpg.Pool, clock: HandClock
) -> None:
    shop, web = Catalog(), uuid.uuid4()
    await project(pool, clock, application(shop, web), shop.service_status(web))
    remote = Remote(heads={(REPO, "main"): HEAD_1})
    poll = deps(remote, clock)
    await poll_round(pool, poll)
    router = build_git_webhook_router(
        pool, {}, GitHookDeps(sealer=SEALER, clock=clock, poll_quiet=POLICY.webhook_quiet)
    )
    app = create_app(service="scheduler", routers=[router])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://scheduler/internal/v1"
    ) as api:
        hook = await new_hook(api, shop.organization_id)
        body = push_body(commit=HEAD_2)
        answer = await api.post(
            f"/hooks/git/{hook['id']}", content=body, headers=github(body, hook["secret"])
        )
        assert answer.status_code == 202 and answer.json()["result"] == "deployed"
    assert await deploys(pool) == [(str(web), HEAD_2)]
    remote.heads[REPO, "main"] = HEAD_2

    clock.advance(seconds=180)
    assert await poll_round(pool, poll) == 0, "polled while pushes come through a webhook"
    clock.advance(hours=1)
    assert await poll_round(pool, poll) == 1
    assert await deploys(pool) == [(str(web), HEAD_2)], "the pushed commit was deployed twice"
    assert [n["commit"] for n in await new_commits(pool)] == [HEAD_1, HEAD_2]


@pytest.fixture
def forge(tmp_path: Path) -> Iterator[tuple[PrivateForge, Path]]:
    """A private forge serving ``shop``, and the work repository its one commit came from (where
    the test commits what it pushes next)."""
    work = committed(tmp_path / "work", {"README": "one\n"}, "one")
    root = tmp_path / "forge"
    root.mkdir()
    publish_bare(work, root, "shop")
    with private_forge(root, "glpat-poll-secret-42", tmp_path) as served:
        yield served, work


async def test_a_private_repository_is_polled_with_the_organizations_credential(
    pool: asyncpg.Pool,
    clock: HandClock,
    forge: tuple[PrivateForge, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    served, work = forge
    monkeypatch.setenv("GIT_SSL_CAINFO", str(served.ca_file))
    shop, web = Catalog(), uuid.uuid4()
    url = served.url("shop")
    await project(pool, clock, application(shop, web, url=url), shop.service_status(web))
    remote = GitRemote(EgressPolicy.from_setting(served.address), timeout_s=60)
    poll = deps(remote, clock)

    await poll_round(pool, poll)
    [row] = await state(pool, shop.organization_id)
    assert row.failures == 1 and row.last_error is not None
    assert row.last_error.startswith(f"GIT_AUTH_FAILED: {served.address} refused access")
    assert served.refused and not served.served

    credential_id = uuid.uuid4()
    sealed = TRANSPORT.seal(b"glpat-poll-secret-42", aad=credential_id.bytes)
    changed = ev.GitCredentialChanged(
        credential_id=credential_id,
        organization_id=shop.organization_id,
        name="forge",
        kind="token",
        host=served.address,
        secret_sealed=base64.b64encode(sealed).decode(),
        version=1,
    )
    async with db.transaction(pool) as conn:
        envelope = new_event(changed, subject=str(credential_id), source="catalog")
        await git_credentials.on_changed(conn, envelope)
    clock.advance(seconds=180)
    await poll_round(pool, poll)
    [row] = await state(pool, shop.organization_id)
    assert (row.failures, row.last_commit) == (0, served.head("shop"))

    (work / "README").write_text("two\n")
    git(work, "commit", "--quiet", "--all", "-m", "two")
    git(work, "push", "--quiet", str(served.root / "shop.git"), "main")
    pushed = git(work, "rev-parse", "HEAD")
    clock.advance(seconds=180)
    await poll_round(pool, poll)
    assert await deploys(pool) == [(str(web), pushed)]
    for line in (row.last_error or "", str(await state(pool, shop.organization_id))):
        assert "glpat-poll-secret-42" not in line


async def test_a_local_repository_under_the_roots_is_polled_and_its_new_commit_deployed(
    pool: asyncpg.Pool, clock: HandClock, tmp_path: Path
) -> None:
    work = committed(tmp_path / "repos" / "shop", {"README": "one\n"}, "one")
    shop, web = Catalog(), uuid.uuid4()
    await project(pool, clock, application(shop, web, url=str(work)), shop.service_status(web))
    poll = deps(GitRemote(local_roots=(tmp_path / "repos",), timeout_s=60), clock)

    assert await poll_round(pool, poll) == 1
    first = git(work, "rev-parse", "HEAD")
    assert [n["commit"] for n in await new_commits(pool)] == [first]
    assert await deploys(pool) == [], "the first head seen deployed what may already run"

    (work / "README").write_text("two\n")
    git(work, "commit", "--quiet", "--all", "-m", "two")
    second = git(work, "rev-parse", "HEAD")
    clock.advance(seconds=180)
    assert await poll_round(pool, poll) == 1
    assert [n["commit"] for n in await new_commits(pool)] == [first, second]
    assert await deploys(pool) == [(str(web), second)]
    [row] = await state(pool, shop.organization_id)
    assert (row.repository_key, row.last_commit, row.failures) == (str(work), second, 0)


async def test_a_local_path_outside_the_roots_is_refused_once_until_the_backoff_cap(
    pool: asyncpg.Pool, clock: HandClock, tmp_path: Path
) -> None:
    work = committed(tmp_path / "elsewhere" / "shop", {"README": "one\n"}, "one")
    shop, web = Catalog(), uuid.uuid4()
    await project(pool, clock, application(shop, web, url=str(work)), shop.service_status(web))
    poll = deps(GitRemote(local_roots=(tmp_path / "repos",), timeout_s=60), clock)

    assert await poll_round(pool, poll) == 1
    [row] = await state(pool, shop.organization_id)
    assert row.failures == 1 and row.last_error is not None
    assert row.last_error.startswith(f"TARGET_NOT_ALLOWED: {work} is not under an allowed local")
    assert "SLIPWAY_GIT_LOCAL_ROOTS" in row.last_error
    async with pool.acquire() as conn:
        due = await poll_queries.next_due(conn)
    assert due == clock.now() + POLICY.backoff_cap, "a refusal no retry lifts backed off slowly"
    clock.advance(seconds=POLICY.backoff_cap.total_seconds() - 1)
    assert await poll_round(pool, poll) == 0, "asked again before the backoff cap"
    assert await new_commits(pool) == [] and await deploys(pool) == []
