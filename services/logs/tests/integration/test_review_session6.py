"""Review findings on the read API (session 6), against real PostgreSQL."""

from __future__ import annotations

import uuid

import pytest

from services.logs.tests.integration.conftest import member_of
from services.logs.tests.integration.events import lines_event
from slipway_libs import db
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
