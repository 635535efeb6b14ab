"""Review of the follow stream (issue 12): bad input refused before the stream opens, and a
stream's own events (its end) only to followers of its organization."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from services.logs.tests.integration.conftest import member_of
from slipway_libs.http import create_app
from slipway_logs.adapters.line_feed import LineFeed
from slipway_logs.api.follow import build_follow_router
from slipway_logs.usecases.follow import FollowLimits

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
