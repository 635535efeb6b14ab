"""Review of the follow stream (issue 12): bad input refused before the stream opens, and a
stream's own events (its end) only to followers of its organization."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from services.logs.tests.integration.conftest import member_of
from services.logs.tests.integration.test_follow import end_deployment, store_deploy
from slipway_libs.http import create_app
from slipway_logs.adapters.line_feed import LineFeed
from slipway_logs.api.follow import build_follow_router
from slipway_logs.domain.follow import LineFilter
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
async def follow_api(logs_db) -> AsyncIterator[httpx.AsyncClient]:
    dsn, pool = logs_db
    limits = FollowLimits(backlog_lines=100, heartbeat_s=0.05, lifetime_s=1.0)
    app = create_app(
        service="logs", routers=[build_follow_router(pool, LineFeed(pool, dsn), limits, {})]
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://logs/internal/v1"
    ) as client:
        yield client


# ``²``, ``¹²``: digits to ``str.isdigit`` (a header is read as latin-1), not to ``int``
@pytest.mark.parametrize("value", [b"abc", b"\xb2", b"\xb9\xb2", b"1\xb2"])
async def test_a_last_event_id_not_of_ascii_digits_answers_422(follow_api, value: bytes) -> None:
    answer = await follow_api.get(
        f"/services/{uuid.uuid4()}/logs/stream",
        headers={**member_of(uuid.uuid4()), "last-event-id": value},
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == "LOGS_BAD_LAST_EVENT_ID"


async def test_a_since_out_of_the_range_of_times_answers_422_before_the_stream_opens(
    follow_api,
) -> None:
    answer = await follow_api.get(
        f"/services/{uuid.uuid4()}/logs/stream",
        params={"since": "0001-01-01T00:00:00+14:00"},
        headers=member_of(uuid.uuid4()),
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == "LOGS_BAD_TIME"


@pytest.fixture
async def feed(logs_db) -> AsyncIterator[LineFeed]:
    dsn, pool = logs_db
    feed = LineFeed(pool, dsn, poll_s=30)
    listening = asyncio.create_task(feed.listen())
    try:
        yield feed
    finally:
        listening.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listening


@pytest.mark.parametrize("with_lines", [True, False])
async def test_another_organizations_follower_is_not_told_how_a_deployment_ended(
    pool, feed, with_lines: bool
) -> None:
    org, deployment = uuid.uuid4(), uuid.uuid4()
    if with_lines:
        await store_deploy(pool, org, deployment, "building")
    await end_deployment(pool, org, deployment)
    limits = FollowLimits(backlog_lines=100, heartbeat_s=0.05, lifetime_s=1.0, end_grace_s=0)

    def request(organization: uuid.UUID) -> FollowRequest:
        return FollowRequest(
            kind="deployment",
            stream_id=deployment,
            organization_id=organization,
            line_filter=LineFilter(),
            tail=100,
            after=None,
        )

    async def events_of(organization: uuid.UUID) -> list[object]:
        events = follow(pool, feed, request(organization), limits)
        async with asyncio.timeout(30), contextlib.aclosing(events):
            return [event async for event in events if not isinstance(event, Heartbeat)]

    # the stream's own organization: its end at once
    assert isinstance((await events_of(org))[-1], End)
    # another organization: nothing of the stream (no end, no count of its lines), then resume
    assert await events_of(uuid.uuid4()) == [Following(), Expired(0)]


async def test_follows_beyond_the_process_cap_answer_503_with_retry_after(logs_db) -> None:
    dsn, pool = logs_db
    feed = LineFeed(pool, dsn)
    limits = FollowLimits(backlog_lines=100, heartbeat_s=0.05, lifetime_s=3.0, max_followers=1)
    app = create_app(service="logs", routers=[build_follow_router(pool, feed, limits, {})])
    path = f"/internal/v1/services/{uuid.uuid4()}/logs/stream"
    headers = member_of(uuid.uuid4())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://logs"
    ) as client:
        first = asyncio.create_task(client.get(path, headers=headers))
        async with asyncio.timeout(30):
            while feed.followers < 1:  # the first follow holds the one place
                await asyncio.sleep(0.01)
        refused = await client.get(path, headers=headers)
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "LOGS_TOO_MANY_FOLLOWERS"
        assert refused.headers["retry-after"]
        assert (await first).status_code == 200  # its lifetime over: the place is free again
        again = asyncio.create_task(client.get(path, headers=headers))
        async with asyncio.timeout(30):
            while feed.followers < 1:
                await asyncio.sleep(0.01)
        assert (await again).status_code == 200
