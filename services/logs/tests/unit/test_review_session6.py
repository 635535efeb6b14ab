"""A page's byte budget (review, session 6): cut in the query's direction, one line at least."""

from __future__ import annotations

from slipway_logs.domain.paging import LogQuery, within_budget

SIZES = {1: 40, 2: 40, 3: 40, 4: 40}


def test_a_forward_page_keeps_its_oldest_lines_and_has_more() -> None:
    assert within_budget(LogQuery(), [1, 2, 3, 4], SIZES, more=False, budget=100) == (
        [1, 2],
        True,
    )


def test_a_backward_page_keeps_its_newest_lines_and_has_more() -> None:
    assert within_budget(LogQuery(tail=4), [1, 2, 3, 4], SIZES, more=False, budget=100) == (
        [3, 4],
        True,
    )


def test_a_page_within_the_budget_is_unchanged() -> None:
    assert within_budget(LogQuery(), [1, 2], SIZES, more=False, budget=100) == ([1, 2], False)
    assert within_budget(LogQuery(), [1, 2], SIZES, more=True, budget=100) == ([1, 2], True)


def test_a_line_larger_than_the_budget_comes_alone() -> None:
    assert within_budget(LogQuery(), [1, 2], {1: 500, 2: 1}, more=False, budget=100) == (
        [1],
        True,
    )
