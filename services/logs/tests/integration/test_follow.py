"""Following a stream on the real database: the process's LISTEN feed wakes the follower on
commit, silences get heartbeats, and the connection's lifetime ends with the cursor to resume
after (the HTTP side, through the gateway: tests/e2e/test_logs_follow.py)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from services.logs.tests.integration.events import lines_event
from slipway_contracts import new_event
from slipway_contracts.events.deployer import DeploymentSucceeded
from slipway_libs import db
from slipway_logs.adapters.line_feed import LineFeed
from slipway_logs.domain.follow import LineFilter
from slipway_logs.domain.lines import Line
from slipway_logs.usecases import deployment_ends, ingest
from slipway_logs.usecases.follow import (
    End,
    Expired,
    Following,
    FollowLimits,
    FollowRequest,
    Heartbeat,
    follow,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def feed(logs_db) -> AsyncIterator[LineFeed]:
    dsn, pool = logs_db
    feed = LineFeed(pool, dsn, poll_s=30)  # only a notification can wake it in time
    listening = asyncio.create_task(feed.listen())
    try:
        yield feed
    finally:
        listening.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listening


async def store(pool: asyncpg.Pool, org: uuid.UUID, service: uuid.UUID, *texts: str) -> None:
    async with db.transaction(pool) as conn:
        await ingest.append(conn, [lines_event(org, *texts, kind="live", service_id=service)])


async def test_history_then_live_lines_heartbeats_and_the_end_of_the_lifetime(pool, feed) -> None:
    org, service = uuid.uuid4(), uuid.uuid4()
    await store(pool, org, service, "one", "two", "three")
    request = FollowRequest(
        kind="service",
        stream_id=service,
        organization_id=org,
        line_filter=LineFilter(),
        tail=2,
        after=None,
    )
    limits = FollowLimits(backlog_lines=100, heartbeat_s=0.05, lifetime_s=2.0)
    seen: list[object] = []
    events = follow(pool, feed, request, limits)
    async with asyncio.timeout(30), contextlib.aclosing(events):
        async for event in events:
            seen.append(event)
            if isinstance(event, Line) and event.text == "three":
                await store(pool, org, service, "four")  # while following: comes live
            if isinstance(event, Expired):
                break
    lines = [e.text for e in seen if isinstance(e, Line)]
    assert lines == ["two", "three", "four"]
    assert any(isinstance(e, Heartbeat) for e in seen)
    assert seen[-1] == Expired(4)  # resume after the last line sent
    assert feed.followers == 0


async def test_another_organizations_follower_gets_none_of_the_streams_lines(pool, feed) -> None:
    org, service = uuid.uuid4(), uuid.uuid4()
    await store(pool, org, service, "secret")
    request = FollowRequest(
        kind="service",
        stream_id=service,
        organization_id=uuid.uuid4(),
        line_filter=LineFilter(),
        tail=10,
        after=0,
    )
    limits = FollowLimits(backlog_lines=100, heartbeat_s=0.05, lifetime_s=1.0)
    seen = []
    events = follow(pool, feed, request, limits)
    async with asyncio.timeout(30), contextlib.aclosing(events):
        async for event in events:
            seen.append(event)
            if isinstance(event, Heartbeat) and len(seen) == 2:  # after Following
                await store(pool, org, service, "more secret")
    assert isinstance(seen[0], Following)
    assert not any(isinstance(e, Line) for e in seen)
    assert isinstance(seen[-1], Expired)


async def test_a_line_committed_right_after_following_reaches_a_follower_from_the_end(
    pool, feed
) -> None:
    # ``Following`` is the promise clients wait for before they write (the e2e tests did not,
    # and a follower that subscribed after the first lines missed them, now and then)
    org, service = uuid.uuid4(), uuid.uuid4()
    await store(pool, org, service, "before")
    request = FollowRequest(
        kind="service",
        stream_id=service,
        organization_id=org,
        line_filter=LineFilter(),
        tail=0,
        after=None,
    )
    limits = FollowLimits(backlog_lines=100, heartbeat_s=5, lifetime_s=30)
    events = follow(pool, feed, request, limits)
    async with asyncio.timeout(30), contextlib.aclosing(events):
        assert isinstance(await anext(events), Following)
        assert feed.followers == 1
        await store(pool, org, service, "after")
        line = await anext(events)
    assert isinstance(line, Line)
    assert line.text == "after"


async def end_deployment(pool: asyncpg.Pool, org: uuid.UUID, deployment: uuid.UUID) -> None:
    payload = DeploymentSucceeded(
        deployment_id=deployment,
        environment_id=uuid.uuid4(),
        organization_id=org,
        action="DEPLOY",
        duration_s=1.0,
    )
    event = new_event(payload, subject=str(deployment), source="test", organization_id=org)
    async with db.transaction(pool) as conn:
        await deployment_ends.record(conn, event)
        await deployment_ends.record(conn, event)  # a second end changes nothing


async def test_a_deployments_follower_gets_the_lines_stored_in_the_grace_then_its_end(
    pool, feed
) -> None:
    org, deployment = uuid.uuid4(), uuid.uuid4()
    await store_deploy(pool, org, deployment, "building")
    request = FollowRequest(
        kind="deployment",
        stream_id=deployment,
        organization_id=org,
        line_filter=LineFilter(),
        tail=100,
        after=None,
    )
    limits = FollowLimits(backlog_lines=100, heartbeat_s=0.05, lifetime_s=60, end_grace_s=0.5)
    seen: list[object] = []
    events = follow(pool, feed, request, limits)
    async with asyncio.timeout(30), contextlib.aclosing(events):
        async for event in events:
            seen.append(event)
            if isinstance(event, Line) and event.text == "building":
                await end_deployment(pool, org, deployment)
                # the last line comes after the end was recorded (another topic)
                await store_deploy(pool, org, deployment, "done")
            if isinstance(event, End):
                break
    assert [e.text for e in seen if isinstance(e, Line)] == ["building", "done"]
    assert seen[-1] == End("SUCCESS", 2)

    # a follower that comes long after the end gets the lines, then the end at once
    late = follow(pool, feed, request, FollowLimits(**{**limits.__dict__, "end_grace_s": 0}))
    async with asyncio.timeout(30), contextlib.aclosing(late):
        got = [event async for event in late if not isinstance(event, Heartbeat)]
    assert [type(e).__name__ for e in got] == ["Following", "Line", "Line", "End"]


async def store_deploy(
    pool: asyncpg.Pool, org: uuid.UUID, deployment: uuid.UUID, text: str
) -> None:
    async with db.transaction(pool) as conn:
        await ingest.append(conn, [lines_event(org, text, deployment_id=deployment)])
