from datetime import date

from slipway_logs.domain import partitions


def test_names_and_days_round_trip() -> None:
    assert partitions.name(date(2026, 3, 9)) == "log_lines_20260309"
    assert partitions.day_of("log_lines_20260309") == date(2026, 3, 9)
    assert partitions.day_of("log_lines") is None
    assert partitions.day_of("something_else_20260309") is None


def test_today_and_the_days_ahead() -> None:
    assert partitions.ahead(date(2026, 12, 31), 2) == [
        date(2026, 12, 31),
        date(2027, 1, 1),
        date(2027, 1, 2),
    ]


def test_a_day_expires_once_all_of_it_is_older_than_the_retention() -> None:
    names = [partitions.name(date(2026, 1, d)) for d in (1, 2, 3, 4)] + ["log_lines_default"]
    # on the 5th with 2 days kept: the 3rd (its last instant is 2 days ago) and later stay
    assert partitions.expired(names, date(2026, 1, 5), 2) == [
        "log_lines_20260101",
        "log_lines_20260102",
    ]
    assert partitions.expired(names, date(2026, 1, 5), 30) == []
