"""The organization's live event stream (issue 15, item 4), end to end on the real stack:
identity, catalog, deployer and gateway as processes, the real Kafka.

Two organizations, each followed by its owner: each follower sees its own deployments' events,
in order, and nothing of the other's. A follower that disconnects resumes with Last-Event-ID
without a gap or a repeat, also after the gateway restarts (the resume then reads the topic
again). A member whose custom role reads one environment mode receives only that mode's events;
a billing member none. Empty environments deploy at once (nothing to build), which keeps the
deployments quick and their events few.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest

from slipway_libs.testing.platform import Platform
from slipway_libs.testing.public_api import User, create_org, eventually, sign_up, token_auth
from tests.e2e.sse import Event, events

pytestmark = pytest.mark.e2e

WAIT_S = 60
TERMINAL = ("deployer.DeploymentSucceeded", "deployer.DeploymentFailed")
RANK = {"deployer.DeploymentQueued": 0, "deployer.DeploymentStarted": 1}


@pytest.fixture(scope="module")
async def platform(platform_factory) -> Platform:
    return await platform_factory(["identity", "catalog", "deployer", "gateway"])


@pytest.fixture
async def api(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=f"{platform.url('gateway')}/api/v1", timeout=30
    ) as client:
        yield client


@dataclass
class Follower:
    """One client of the stream, reading in the background until stopped."""

    api: httpx.AsyncClient
    org: str
    headers: dict[str, str]
    received: list[Event] = field(default_factory=list)
    following: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    def start(self, last_event_id: str | None = None) -> None:
        self.following = asyncio.Event()
        self.task = asyncio.create_task(self._read(last_event_id))

    async def _read(self, last_event_id: str | None) -> None:
        headers = dict(self.headers)
        if last_event_id:
            headers["last-event-id"] = last_event_id
        path = f"/organizations/{self.org}/events"
        async with self.api.stream("GET", path, headers=headers, timeout=None) as response:
            assert response.status_code == 200, await response.aread()
            assert response.headers["content-type"].startswith("text/event-stream")
            async for event in events(response):
                if event.event == "following":
                    self.following.set()
                elif event.event != "heartbeat":
                    self.received.append(event)

    async def started(self) -> None:
        waiting = asyncio.create_task(self.following.wait())
        assert self.task is not None
        done, _ = await asyncio.wait(
            {waiting, self.task}, timeout=WAIT_S, return_when="FIRST_COMPLETED"
        )
        if self.task in done:
            self.task.result()  # its failure, said
        assert waiting in done, "the stream never said it was following"

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    def of(self, deployment_id: str) -> list[str]:
        return [e.event for e in self.received if e.data["deployment_id"] == deployment_id]

    async def until_ended(self, *deployments: str) -> None:
        async def ended() -> bool:
            return all(any(t in TERMINAL for t in self.of(d)) for d in deployments)

        await eventually(ended, within_s=WAIT_S)

    @property
    def last_id(self) -> str:
        ids = [e.id for e in self.received if e.id]
        assert ids, "no event received"
        return ids[-1]


async def _org(api: httpx.AsyncClient, name: str) -> tuple[User, str, str]:
    owner = await sign_up(api, name)
    org = await create_org(api, owner, name)
    made = await api.post(f"/organizations/{org}/projects", json={"name": "p"}, headers=owner.auth)
    assert made.status_code == 201, made.text
    return owner, org, made.json()["id"]


async def _environment(
    api: httpx.AsyncClient, owner: User, org: str, project: str, mode: str
) -> str:
    clusters = (await api.get(f"/organizations/{org}/clusters", headers=owner.auth)).json()
    local = next(c["id"] for c in clusters["items"] if c["kind"] == "local")
    body = {"name": f"e{uuid.uuid4().hex[:8]}", "mode": mode, "cluster_id": local}
    made = await api.post(f"/projects/{project}/environments", json=body, headers=owner.auth)
    assert made.status_code == 201, made.text
    env: str = made.json()["id"]

    async def deployer_knows() -> bool:  # it hears of the environment over Kafka
        status = await api.get(f"/environments/{env}/status", headers=owner.auth)
        return status.status_code == 200

    await eventually(deployer_knows, within_s=WAIT_S)
    return env


async def _deploy(api: httpx.AsyncClient, owner: User, env: str) -> str:
    deployed = await api.post(f"/environments/{env}/deploy", headers=owner.auth)
    assert deployed.status_code == 202, deployed.text
    request_id: str = deployed.json()["request_id"]
    return request_id


async def _succeeded(api: httpx.AsyncClient, owner: User, deployment: str) -> None:
    async def done() -> bool:
        read = await api.get(f"/deployments/{deployment}", headers=owner.auth)
        return read.status_code == 200 and read.json()["status"] == "SUCCESS"

    await eventually(done, within_s=WAIT_S)


def _in_order(types: list[str]) -> bool:
    """Queued first, then started, then the rest, the end last."""
    ranks = [RANK.get(t, 3 if t in TERMINAL else 2) for t in types]
    return bool(types) and ranks == sorted(ranks) and types[0] == "deployer.DeploymentQueued"


async def _caught_up(
    api: httpx.AsyncClient, org: str, headers: dict[str, str], after: str
) -> list[Event]:
    """What the stream holds after ``after`` for these credentials (follow=false: then it ends)."""
    path = f"/organizations/{org}/events"
    params = {"follow": "false", "after": after}
    async with api.stream("GET", path, headers=headers, params=params) as response:
        assert response.status_code == 200, await response.aread()
        got = [e async for e in events(response) if e.event not in ("following", "heartbeat")]
    assert got and got[-1].event == "end" and got[-1].data == {"reason": "caught_up"}, got
    return got[:-1]


async def test_each_organization_follows_only_its_own_events_in_order(
    api: httpx.AsyncClient,
) -> None:
    (owner_a, org_a, project_a), (owner_b, org_b, project_b) = (
        await _org(api, "Alpha"),
        await _org(api, "Beta"),
    )
    env_a = await _environment(api, owner_a, org_a, project_a, "staging")
    env_b = await _environment(api, owner_b, org_b, project_b, "staging")
    follow_a = Follower(api, org_a, owner_a.auth)
    follow_b = Follower(api, org_b, owner_b.auth)
    for follower in (follow_a, follow_b):
        follower.start()
        await follower.started()
    try:
        first_a = await _deploy(api, owner_a, env_a)
        only_b = await _deploy(api, owner_b, env_b)
        await follow_a.until_ended(first_a)
        second_a = await _deploy(api, owner_a, env_a)
        await follow_a.until_ended(second_a)
        await follow_b.until_ended(only_b)
    finally:
        await follow_a.stop()
        await follow_b.stop()
    assert {e.data["organization_id"] for e in follow_a.received} == {org_a}
    assert {e.data["environment_id"] for e in follow_a.received} == {env_a}
    assert {e.data["organization_id"] for e in follow_b.received} == {org_b}
    assert {e.data["deployment_id"] for e in follow_b.received} == {only_b}
    for follower, deployment in ((follow_a, first_a), (follow_a, second_a), (follow_b, only_b)):
        assert _in_order(follower.of(deployment)), follower.of(deployment)
    # the second deployment was asked for after the first had ended: all of its events follow
    deployments = [e.data["deployment_id"] for e in follow_a.received]
    assert deployments == sorted(deployments, key=lambda d: d == second_a)
    assert follow_a.received[0].data["project_id"] == project_a
    ids = [e.data["id"] for e in follow_a.received]
    assert len(ids) == len(set(ids)), "an event was sent twice"


async def test_a_follower_resumes_without_gap_also_after_a_gateway_restart(
    api: httpx.AsyncClient, platform: Platform
) -> None:
    owner, org, project = await _org(api, "Resumer")
    env = await _environment(api, owner, org, project, "development")
    steady, resumer = Follower(api, org, owner.auth), Follower(api, org, owner.auth)
    for follower in (steady, resumer):
        follower.start()
        await follower.started()
    first = await _deploy(api, owner, env)
    await resumer.until_ended(first)
    await resumer.stop()  # disconnected: a deployment happens meanwhile
    missed = await _deploy(api, owner, env)
    await steady.until_ended(missed)
    resumer.start(resumer.last_id)
    await resumer.until_ended(missed)
    await steady.stop()
    await resumer.stop()
    seen = [e.data["id"] for e in resumer.received]
    assert seen == [e.data["id"] for e in steady.received], "a gap or a repeat at the resume"

    # the gateway restarts while the follower is away: its buffer is gone, the topic is not
    during = await _deploy(api, owner, env)
    await _succeeded(api, owner, during)
    platform.stop("gateway")
    platform.start("gateway")
    await platform.wait_ready("gateway")
    resumer.start(resumer.last_id)
    await resumer.until_ended(during)
    await resumer.stop()
    after_restart = resumer.received[len(seen) :]
    assert {e.data["deployment_id"] for e in after_restart} == {during}
    assert _in_order([e.event for e in after_restart])
    assert len({e.data["id"] for e in resumer.received}) == len(resumer.received)


async def test_a_member_sees_only_the_environments_their_role_may_read(
    api: httpx.AsyncClient,
) -> None:
    owner, org, project = await _org(api, "Roles")
    staging = await _environment(api, owner, org, project, "staging")
    production = await _environment(api, owner, org, project, "production")
    role = {
        "name": "staging-reader",
        "projects": [{"project_id": project, "environments": {"staging": "viewer"}}],
    }
    made = await api.post(f"/organizations/{org}/roles", json=role, headers=owner.auth)
    assert made.status_code == 201, made.text
    reader, billing = (
        await _token(api, owner, org, made.json()["id"]),
        await _token(api, owner, org, "billing"),
    )
    # a stranger and another organization's owner cannot open it; a bad resume id is refused
    stranger = await sign_up(api, "Stranger")
    refused = await api.get(f"/organizations/{org}/events", headers=stranger.auth)
    assert (refused.status_code, refused.json()["error"]["code"]) == (404, "ORGANIZATION_NOT_FOUND")
    bad = await api.get(
        f"/organizations/{org}/events", headers={**owner.auth, "last-event-id": "../1"}
    )
    assert (bad.status_code, bad.json()["error"]["code"]) == (422, "EVENTS_BAD_LAST_EVENT_ID")

    owner_follows = Follower(api, org, owner.auth)
    reader_follows = Follower(api, org, reader)
    for follower in (owner_follows, reader_follows):
        follower.start()
        await follower.started()
    warm_up = await _deploy(api, owner, staging)
    await owner_follows.until_ended(warm_up)
    since = owner_follows.last_id
    on_staging = await _deploy(api, owner, staging)
    on_production = await _deploy(api, owner, production)
    await owner_follows.until_ended(on_staging, on_production)
    await reader_follows.until_ended(warm_up, on_staging)
    await owner_follows.stop()
    await reader_follows.stop()

    live = {e.data["environment_id"] for e in reader_follows.received}
    assert live == {staging}
    # what each is sent from the same position: the owner all, the reader staging's, billing none
    everything = await _caught_up(api, org, owner.auth, since)
    assert {e.data["deployment_id"] for e in everything} == {on_staging, on_production}
    readable = await _caught_up(api, org, reader, since)
    assert [e.data["id"] for e in readable] == [
        e.data["id"] for e in everything if e.data["environment_id"] == staging
    ]
    assert await _caught_up(api, org, billing, since) == []


async def _token(api: httpx.AsyncClient, owner: User, org: str, role: str) -> dict[str, str]:
    body = {"name": f"t{uuid.uuid4().hex[:6]}", "role": role}
    made = await api.post(f"/organizations/{org}/api-tokens", json=body, headers=owner.auth)
    assert made.status_code == 201, made.text
    headers = token_auth(made.json()["token"])

    async def known() -> bool:  # the gateway has heard of the token
        return (await api.get(f"/organizations/{org}", headers=headers)).status_code == 200

    await eventually(known, within_s=WAIT_S)
    return headers
