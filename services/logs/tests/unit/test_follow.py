"""A follower's bounded buffer and its deadlines (pure; the clock is a number the test moves)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slipway_logs.domain.follow import Backlog, Deadlines, LineFilter, Skipped
from slipway_logs.domain.lines import Line

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def line(cursor: int, text: str = "", stream: str = "stdout", at: datetime = T0) -> Line:
    return Line(
        cursor=cursor,
        at=at,
        kind="live",
        stream=stream,  # type: ignore[arg-type]
        service_id=uuid.uuid4(),
        build_id=None,
        text=text or f"line {cursor}",
    )


def cursors(items: list[Line | Skipped]) -> list[object]:
    return [i.cursor if isinstance(i, Line) else i for i in items]


def test_lines_within_the_capacity_are_kept_in_order() -> None:
    backlog = Backlog(capacity=3, start=10)
    assert all(backlog.offer(line(c)) for c in (11, 12, 13))
    assert cursors(backlog.take()) == [11, 12, 13]
    assert backlog.take() == []


def test_an_overflow_drops_the_newest_lines_and_reports_the_gap_at_the_end() -> None:
    backlog = Backlog(capacity=2, start=10)
    results = [backlog.offer(line(c)) for c in (11, 12, 13, 14, 15)]
    assert results == [True, True, False, False, False]
    assert cursors(backlog.take()) == [11, 12, Skipped(count=3, from_cursor=12, to_cursor=15)]


def test_a_gap_sits_between_the_lines_kept_before_and_after_it() -> None:
    backlog = Backlog(capacity=2, start=0)
    for c in (1, 2, 3, 4):
        backlog.offer(line(c))
    first = backlog.take()
    backlog.offer(line(5))
    assert cursors(first) == [1, 2, Skipped(count=2, from_cursor=2, to_cursor=4)]
    assert cursors(backlog.take()) == [5]


def test_a_gap_still_open_when_taken_is_reported_and_the_next_one_starts_afresh() -> None:
    backlog = Backlog(capacity=1, start=0)
    for c in (1, 2, 3):
        backlog.offer(line(c))
    assert cursors(backlog.take()) == [1, Skipped(count=2, from_cursor=1, to_cursor=3)]
    for c in (4, 5):
        backlog.offer(line(c))
    assert cursors(backlog.take()) == [4, Skipped(count=1, from_cursor=4, to_cursor=5)]


def test_lines_at_or_below_what_it_has_seen_are_repeats() -> None:
    backlog = Backlog(capacity=5, start=10)
    assert not backlog.offer(line(10))
    backlog.offer(line(12))
    assert not backlog.offer(line(11))
    assert not backlog.offer(line(12))
    assert cursors(backlog.take()) == [12]


def test_a_backlog_holds_at_least_one_line() -> None:
    with pytest.raises(ValueError):
        Backlog(capacity=0, start=0)


@given(
    capacity=st.integers(1, 5),
    rounds=st.lists(st.integers(0, 8), min_size=1, max_size=8),
)
def test_kept_lines_and_gaps_account_for_every_line_once(capacity: int, rounds: list[int]) -> None:
    """Offer ``n`` new lines per round, then take: what was taken, with each gap expanded to
    ``(from_cursor, to_cursor]``, is exactly the lines offered, in order."""
    backlog = Backlog(capacity=capacity, start=0)
    offered = 0
    accounted: list[int] = []
    for n in rounds:
        for _ in range(n):
            offered += 1
            backlog.offer(line(offered))
        for item in backlog.take():
            if isinstance(item, Line):
                accounted.append(item.cursor)
            else:
                gap = list(range(item.from_cursor + 1, item.to_cursor + 1))
                assert len(gap) == item.count
                accounted += gap
    assert accounted == list(range(1, offered + 1))


def test_the_filter_applies_the_read_apis_stream_search_and_since() -> None:
    assert LineFilter(stream="stderr").accepts(line(1, stream="stderr"))
    assert not LineFilter(stream="stderr").accepts(line(1, stream="stdout"))
    assert LineFilter(q="ERROR").accepts(line(1, "an error occurred"))
    assert not LineFilter(q="ERROR").accepts(line(1, "all good"))
    since = LineFilter(since=T0 + timedelta(seconds=1))
    assert not since.accepts(line(1, at=T0))
    assert since.accepts(line(1, at=T0 + timedelta(seconds=1)))


def test_a_heartbeat_is_due_after_a_silence_and_the_end_after_the_lifetime() -> None:
    deadlines = Deadlines(started=100.0, heartbeat_s=15.0, lifetime_s=60.0)
    assert deadlines.due(110.0) is None
    assert deadlines.wait_s(110.0) == 5.0
    assert deadlines.due(115.0) == "heartbeat"
    deadlines.sent(115.0)
    assert deadlines.due(129.0) is None
    deadlines.sent(129.0)  # a line went out: the silence starts again
    assert deadlines.wait_s(130.0) == 14.0
    assert deadlines.due(144.0) == "heartbeat"
    deadlines.sent(155.0)
    assert deadlines.wait_s(158.0) == 2.0  # the lifetime ends before the next heartbeat
    assert deadlines.due(160.0) == "expired"
    assert deadlines.wait_s(161.0) == 0.0


def test_a_backlog_is_bounded_in_bytes_too_and_its_overflow_is_a_gap() -> None:
    backlog = Backlog(capacity=100, start=0, max_bytes=10)
    results = [backlog.offer(line(c, "abcd")) for c in (1, 2, 3, 4)]
    assert results == [True, True, False, False]  # 8 bytes kept; a third line would be 12
    assert cursors(backlog.take()) == [1, 2, Skipped(count=2, from_cursor=2, to_cursor=4)]
    # room again once taken; a line larger than the bound alone still goes (never stuck)
    assert backlog.offer(line(5, "x" * 50))
    assert not backlog.offer(line(6, "y"))
    assert cursors(backlog.take()) == [5, Skipped(count=1, from_cursor=5, to_cursor=6)]
