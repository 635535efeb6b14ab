"""Review findings on the read API (session 6), against real PostgreSQL."""

from __future__ import annotations

import uuid

import pytest

from services.logs.tests.integration.conftest import member_of
from services.logs.tests.integration.events import lines_event
from slipway_libs import db
from slipway_logs.domain.paging import MAX_PAGE_BYTES
from slipway_logs.usecases import ingest

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("name", "moment"),
    [("since", "0001-01-01T00:00:00+14:00"), ("until", "9999-12-31T23:59:59-14:00")],
)
async def test_a_time_that_is_no_instant_in_utc_is_422_not_500(pool, api, name, moment) -> None:
    # valid ISO times whose UTC instant is before year 1 or after 9999: the driver could not
    # send them, and the read answered 500
    org, service = uuid.uuid4(), uuid.uuid4()
    async with db.transaction(pool) as conn:
        await ingest.append(conn, [lines_event(org, "one", kind="live", service_id=service)])
    answer = await api.get(
        f"/services/{service}/logs", params={name: moment}, headers=member_of(org)
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == "LOGS_BAD_TIME"
    assert answer.json()["error"]["details"]["field"] == name

    edge = await api.get(
        f"/services/{service}/logs",
        params={"since": "0001-01-01T00:00:00Z", "until": "9999-12-31T23:59:59Z"},
        headers=member_of(org),
    )
    assert edge.status_code == 200, edge.text
    assert [line["text"] for line in edge.json()["items"]] == ["one"]


async def test_a_page_of_long_lines_stops_at_the_byte_budget_and_pages_on(pool, api) -> None:
    # 5,000 lines of 16,000 characters (what the deployer keeps of a line) made one answer of
    # up to 320 MB, held by the service and again by the gateway: a page now stops at
    # MAX_PAGE_BYTES of text and says where the rest is
    org, service = uuid.uuid4(), uuid.uuid4()
    long = "x" * 16_000
    count = MAX_PAGE_BYTES // 16_000 + 40
    texts = [f"{n:05d}{long}" for n in range(1, count + 1)]
    async with db.transaction(pool) as conn:
        await ingest.append(conn, [lines_event(org, *texts, kind="live", service_id=service)])
    logs, who = f"/services/{service}/logs", member_of(org)

    first = (await api.get(logs, params={"limit": 5000}, headers=who)).json()
    taken = len(first["items"])
    assert 0 < taken < count
    assert sum(len(line["text"].encode()) for line in first["items"]) <= MAX_PAGE_BYTES
    assert first["next_cursor"] == first["items"][-1]["cursor"] == taken
    rest = (
        await api.get(logs, params={"limit": 5000, "after": first["next_cursor"]}, headers=who)
    ).json()
    assert [line["cursor"] for line in first["items"] + rest["items"]] == list(range(1, count + 1))
    assert rest["next_cursor"] is None

    tail = (await api.get(logs, params={"tail": 5000}, headers=who)).json()
    assert tail["items"][-1]["cursor"] == count  # the newest lines, the older ones before
    assert tail["prev_cursor"] == tail["items"][0]["cursor"] > 1
    assert sum(len(line["text"].encode()) for line in tail["items"]) <= MAX_PAGE_BYTES


async def test_one_line_over_the_budget_still_comes_back_whole(pool, api) -> None:
    org, service = uuid.uuid4(), uuid.uuid4()
    huge = "y" * (MAX_PAGE_BYTES + 10)
    async with db.transaction(pool) as conn:
        await ingest.append(
            conn, [lines_event(org, "a", huge, "b", kind="live", service_id=service)]
        )
    logs, who = f"/services/{service}/logs", member_of(org)
    page = (await api.get(logs, params={"after": 1}, headers=who)).json()
    assert [line["text"] for line in page["items"]] == [huge]
    assert page["next_cursor"] == 2
