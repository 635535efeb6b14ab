from datetime import UTC, datetime

import pytest

from slipway_libs.errors import InvalidInput
from slipway_logs.domain import paging
from slipway_logs.domain.lines import Line
from slipway_logs.domain.paging import LogQuery

AT = datetime(2026, 1, 1, tzinfo=UTC)


def _lines(*cursors: int) -> list[Line]:
    return [
        Line(cursor=c, at=AT, kind="live", stream="stdout", service_id=None, build_id=None, text="")
        for c in cursors
    ]


def _page(query: LogQuery, found: list[int]) -> paging.Page:
    cursors, more = paging.chosen(query, found)
    return paging.page(query, _lines(*cursors), more=more, head=99)


def test_from_the_start_forward_with_more() -> None:
    page = _page(LogQuery(limit=3), [1, 2, 3, 4])
    assert [x.cursor for x in page.items] == [1, 2, 3]
    assert (page.prev_cursor, page.next_cursor, page.head_cursor) == (None, 3, 99)


def test_after_a_cursor_to_the_end() -> None:
    page = _page(LogQuery(limit=3, after=3), [4, 5])
    assert [x.cursor for x in page.items] == [4, 5]
    assert (page.prev_cursor, page.next_cursor) == (4, None)


def test_tail_reads_backward_and_answers_oldest_first() -> None:
    page = _page(LogQuery(tail=2), [9, 8, 7])
    assert [x.cursor for x in page.items] == [8, 9]
    assert (page.prev_cursor, page.next_cursor) == (8, None)


def test_before_a_cursor_reaching_the_start() -> None:
    page = _page(LogQuery(limit=5, before=4), [3, 2, 1])
    assert [x.cursor for x in page.items] == [1, 2, 3]
    assert (page.prev_cursor, page.next_cursor) == (None, 3)


def test_between_two_cursors_reads_forward() -> None:
    query = LogQuery(after=2, before=9, limit=2)
    assert query.direction == "forward"
    page = _page(query, [3, 4, 5])
    assert [x.cursor for x in page.items] == [3, 4] and page.next_cursor == 4


def test_an_empty_page_points_nowhere() -> None:
    page = _page(LogQuery(after=5), [])
    assert (page.items, page.prev_cursor, page.next_cursor) == ([], None, None)


def test_pages_walked_both_ways_cover_every_cursor_once() -> None:
    stream = list(range(1, 24))
    forward, after = [], None
    while True:
        query = LogQuery(limit=5, after=after)
        found = [c for c in stream if after is None or c > after][: query.size + 1]
        page = _page(query, found)
        forward += [x.cursor for x in page.items]
        if page.next_cursor is None:
            break
        after = page.next_cursor
    assert forward == stream
    backward: list[int] = []
    before = None
    while True:
        query = LogQuery(limit=5, before=before) if before else LogQuery(tail=5)
        found = sorted((c for c in stream if before is None or c < before), reverse=True)
        page = _page(query, found[: query.size + 1])
        backward = [x.cursor for x in page.items] + backward
        if page.prev_cursor is None:
            break
        before = page.prev_cursor
    assert backward == stream


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"since": AT, "until": AT}, "LOGS_BAD_TIME_RANGE"),
        ({"tail": 5, "after": 1}, "LOGS_TAIL_WITH_CURSOR"),
        ({"tail": 5, "before": 1}, "LOGS_TAIL_WITH_CURSOR"),
        ({"after": 5, "before": 5}, "LOGS_BAD_CURSOR_RANGE"),
        ({"q": "a\nb"}, "LOGS_BAD_SEARCH"),
    ],
)
def test_contradictory_queries_are_refused_with_stable_codes(kwargs, code) -> None:
    with pytest.raises(InvalidInput) as refused:
        LogQuery(**kwargs)
    assert refused.value.code == code and refused.value.status_code == 422


def test_search_text_matches_itself_literally() -> None:
    assert LogQuery(q="50%_a\\b").pattern() == "%50\\%\\_a\\\\b%"
    assert LogQuery().pattern() is None
