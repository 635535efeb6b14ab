"""The read API on real PostgreSQL: whole lines back from their parts, filters, search, paging
both ways, refusals with stable codes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.logs.tests.integration.conftest import member_of
from services.logs.tests.integration.events import lines_event
from slipway_libs import db
from slipway_logs.domain.lines import PART_BYTES
from slipway_logs.usecases import ingest

pytestmark = pytest.mark.integration


async def _append(pool, *events) -> None:  # type: ignore[no-untyped-def]
    async with db.transaction(pool) as conn:
        await ingest.append(conn, list(events))


async def test_a_mebibyte_line_comes_back_whole_between_its_neighbours(pool, api) -> None:
    org, service = uuid.uuid4(), uuid.uuid4()
    huge = "".join(chr(0x41 + n % 26) for n in range(1024 * 1024 - 4)) + "😀"
    await _append(pool, lines_event(org, "before", huge, "after", kind="live", service_id=service))
    async with pool.acquire() as conn:
        parts = await conn.fetchval(
            "SELECT count(*) FROM log_lines WHERE stream_id = $1 AND cursor = 2", service
        )
    assert parts == 64  # 1 MiB in 16 KiB parts
    page = (await api.get(f"/services/{service}/logs", headers=member_of(org))).json()
    assert [x["cursor"] for x in page["items"]] == [1, 2, 3]
    assert [x["text"] for x in page["items"]] == ["before", huge, "after"]


async def test_q_finds_text_that_spans_the_split_of_two_parts(pool, api) -> None:
    org, service = uuid.uuid4(), uuid.uuid4()
    needle = "needle-" + "n" * 240 + "-across"  # 254 characters, the split in its middle
    start = PART_BYTES - 100  # the line's first part ends 100 characters into the needle
    long = "a" * start + needle + "b" * 20_000
    other = "c" * 40_000  # three parts, no needle
    await _append(pool, lines_event(org, "short", long, other, kind="live", service_id=service))
    async with pool.acquire() as conn:
        first = await conn.fetchval(
            "SELECT text FROM log_lines WHERE stream_id = $1 AND cursor = 2 AND part = 1", service
        )
    assert needle not in first and needle[:100] == first[-100:]  # split inside the needle
    path, who = f"/services/{service}/logs", member_of(org)
    for q in (needle, needle.upper(), needle[90:110], needle[:100], needle[100:]):
        found = (await api.get(path, params={"q": q}, headers=who)).json()["items"]
        assert [(x["cursor"], x["text"]) for x in found] == [(2, long)], q[:20]
    # the overlap is searched, never answered; a text in neither part is not found
    nothing = (await api.get(path, params={"q": "a" * 100 + "c"}, headers=who)).json()
    assert nothing["items"] == []


async def test_pages_forward_backward_and_tail(pool, api) -> None:
    org, deployment = uuid.uuid4(), uuid.uuid4()
    await _append(
        pool,
        *[lines_event(org, f"l{n}", kind="deploy", deployment_id=deployment) for n in range(1, 11)],
    )
    path, who = f"/deployments/{deployment}/logs", member_of(org)

    async def get(**params: object) -> dict:  # type: ignore[type-arg]
        response = await api.get(path, params=params, headers=who)
        assert response.status_code == 200, response.text
        return response.json()

    first = await get(limit=4)
    assert [x["cursor"] for x in first["items"]] == [1, 2, 3, 4]
    assert (first["prev_cursor"], first["next_cursor"], first["head_cursor"]) == (None, 4, 10)
    second = await get(limit=4, after=first["next_cursor"])
    assert [x["cursor"] for x in second["items"]] == [5, 6, 7, 8]
    last = await get(limit=4, after=second["next_cursor"])
    assert [x["cursor"] for x in last["items"]] == [9, 10] and last["next_cursor"] is None
    tail = await get(tail=3)
    assert [x["text"] for x in tail["items"]] == ["l8", "l9", "l10"]
    assert (tail["prev_cursor"], tail["next_cursor"]) == (8, None)
    back = await get(limit=3, before=tail["prev_cursor"])
    assert [x["cursor"] for x in back["items"]] == [5, 6, 7] and back["prev_cursor"] == 5
    assert all(x["kind"] == "deploy" and x["stream"] == "stdout" for x in back["items"])


async def test_stream_time_and_text_filters(pool, api) -> None:
    org, service = uuid.uuid4(), uuid.uuid4()
    await _append(
        pool,
        lines_event(org, "GET /health 200", "disk 50% full", kind="live", service_id=service),
        lines_event(org, "Traceback: boom", kind="live", service_id=service, stream="stderr"),
        lines_event(org, "disk 5 full", "x_y", kind="live", service_id=service),
    )
    path, who = f"/services/{service}/logs", member_of(org)

    async def texts(**params: object) -> list[str]:
        response = await api.get(path, params=params, headers=who)
        assert response.status_code == 200, response.text
        return [x["text"] for x in response.json()["items"]]

    assert await texts(stream="stderr") == ["Traceback: boom"]
    assert await texts(q="traceback") == ["Traceback: boom"]  # case-insensitive
    assert await texts(q="50%") == ["disk 50% full"]  # % matches itself only
    assert await texts(q="_") == ["x_y"]
    assert await texts(q="health", stream="stderr") == []
    now = datetime.now(UTC)
    assert len(await texts(since=(now - timedelta(minutes=5)).isoformat())) == 5
    assert await texts(until=(now - timedelta(minutes=5)).isoformat()) == []
    assert await texts(since=(now + timedelta(minutes=5)).isoformat()) == []


async def test_a_search_matches_inside_any_part_of_a_long_line(pool, api) -> None:
    org, service = uuid.uuid4(), uuid.uuid4()
    long = "a" * 40_000 + " needle " + "b" * 10
    await _append(pool, lines_event(org, "hay", long, kind="live", service_id=service))
    page = (
        await api.get(f"/services/{service}/logs", params={"q": "needle"}, headers=member_of(org))
    ).json()
    assert [x["text"] for x in page["items"]] == [long]


async def test_q_finds_lines_through_the_chunks_of_many_batches_and_pages_with_them(
    pool, api
) -> None:
    # every batch stores its lines' search chunk; q reads only the lines of matching chunks
    org, service = uuid.uuid4(), uuid.uuid4()
    for batch in range(1, 31):
        needle = "timeout rollback" if batch in (3, 17, 27) else "all fine"
        await _append(
            pool,
            lines_event(org, f"b{batch} start", kind="live", service_id=service),
            lines_event(
                org, f"b{batch} {needle}", f"b{batch} end", kind="live", service_id=service
            ),
        )
    path, who = f"/services/{service}/logs", member_of(org)

    async def found(**params: object) -> list[tuple[int, str]]:
        response = await api.get(path, params=params, headers=who)
        assert response.status_code == 200, response.text
        return [(x["cursor"], x["text"]) for x in response.json()["items"]]

    hits = [(8, "b3 timeout rollback"), (50, "b17 timeout rollback"), (80, "b27 timeout rollback")]
    assert await found(q="TIMEOUT rollback") == hits
    assert await found(q="Rollback", tail=1) == hits[-1:]
    assert await found(q="out roll", after=8) == hits[1:]
    assert await found(q="meout rollb", before=80, limit=1) == hits[1:2]  # backward
    assert await found(q="meout rollb", before=50) == hits[:1]
    assert await found(q="b17 ") == [
        (49, "b17 start"),
        (50, "b17 timeout rollback"),
        (51, "b17 end"),
    ]


async def test_a_chunk_holding_the_words_of_q_in_different_lines_finds_none_of_them(
    pool, api
) -> None:
    org, service = uuid.uuid4(), uuid.uuid4()
    await _append(
        pool, lines_event(org, "rollback now", "timeout later", kind="live", service_id=service)
    )
    path, who = f"/services/{service}/logs", member_of(org)
    nothing = (await api.get(path, params={"q": "rollback timeout"}, headers=who)).json()
    assert nothing["items"] == []
    one = (await api.get(path, params={"q": "back n"}, headers=who)).json()
    assert [x["text"] for x in one["items"]] == ["rollback now"]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"stream": "stdin"}, "VALIDATION_ERROR"),
        ({"tail": 0}, "VALIDATION_ERROR"),
        ({"limit": 5001}, "VALIDATION_ERROR"),
        ({"after": -1}, "VALIDATION_ERROR"),
        ({"since": "yesterday"}, "VALIDATION_ERROR"),
        ({"q": ""}, "VALIDATION_ERROR"),
        ({"tail": 5, "after": 3}, "LOGS_TAIL_WITH_CURSOR"),
        ({"after": 9, "before": 3}, "LOGS_BAD_CURSOR_RANGE"),
        (
            {"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
            "LOGS_BAD_TIME_RANGE",
        ),
        ({"q": "a\u0001b"}, "LOGS_BAD_SEARCH"),
    ],
)
async def test_bad_parameters_answer_422_with_a_stable_code(api, params, code) -> None:
    org = uuid.uuid4()
    response = await api.get(
        f"/services/{uuid.uuid4()}/logs", params=params, headers=member_of(org)
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == code


async def test_a_path_that_is_not_an_id_answers_422(api) -> None:
    response = await api.get("/services/not-a-uuid/logs", headers=member_of(uuid.uuid4()))
    assert response.status_code == 422
