"""The pure parts of ``slipway logs``: what ``--since`` sends."""

from datetime import UTC, datetime

from slipway_cli.logs import since_param

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def test_a_duration_is_a_time_that_long_ago() -> None:
    assert since_param("10m", NOW) == "2026-12-05T11:50:00+00:00"
    assert since_param("2h", NOW) == "2026-12-05T10:00:00+00:00"
    assert since_param("1d", NOW) == "2026-12-04T12:00:00+00:00"
    assert since_param("30s", NOW) == "2026-12-05T11:59:30+00:00"


def test_anything_else_is_passed_as_given_and_none_stays_none() -> None:
    assert since_param("2026-12-01T00:00:00Z", NOW) == "2026-12-01T00:00:00Z"
    assert since_param(None, NOW) is None
