"""The next-fire computation: cron fields, time zones, daylight-saving changes both ways,
missed periods, weekdays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slipway_scheduler.domain import cron, timers
from slipway_scheduler.domain.cron import InvalidSchedule

PARIS = "Europe/Paris"
NEW_YORK = "America/New_York"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def firings(expression: str, zone: str, start: datetime, count: int) -> list[datetime]:
    schedule = cron.parse(expression, zone)
    out, moment = [], start
    for _ in range(count):
        moment = schedule.next_after(moment)
        out.append(moment)
    return out


def test_every_minute_fires_on_the_next_whole_minute() -> None:
    assert firings("* * * * *", "UTC", utc(2026, 1, 1, 10, 0, 30), 3) == [
        utc(2026, 1, 1, 10, 1),
        utc(2026, 1, 1, 10, 2),
        utc(2026, 1, 1, 10, 3),
    ]


def test_next_is_strictly_after() -> None:
    schedule = cron.parse("0 * * * *")
    assert schedule.next_after(utc(2026, 1, 1, 10)) == utc(2026, 1, 1, 11)


def test_steps_ranges_and_lists() -> None:
    got = firings("*/20 9-10 * * *", "UTC", utc(2026, 1, 1), 7)
    assert [(t.hour, t.minute) for t in got] == [
        (9, 0), (9, 20), (9, 40), (10, 0), (10, 20), (10, 40), (9, 0),
    ]  # fmt: skip
    assert got[-1].day == 2


def test_a_time_zone_shifts_the_instant() -> None:
    # 09:00 in Paris is 08:00 UTC in winter, 07:00 UTC in summer
    assert firings("0 9 * * *", PARIS, utc(2026, 1, 10), 1) == [utc(2026, 1, 10, 8)]
    assert firings("0 9 * * *", PARIS, utc(2026, 7, 10), 1) == [utc(2026, 7, 10, 7)]


def test_spring_forward_a_skipped_time_fires_once_late() -> None:
    # Paris, 2026-03-29: 02:00 -> 03:00. 02:30 does not exist that day.
    got = firings("30 2 * * *", PARIS, utc(2026, 3, 27, 12), 3)
    assert got == [
        utc(2026, 3, 28, 1, 30),  # 02:30 CET
        utc(2026, 3, 29, 1, 30),  # "02:30" read with CET = 03:30 CEST: once, an hour late
        utc(2026, 3, 30, 0, 30),  # 02:30 CEST
    ]


def test_spring_forward_with_a_real_time_at_the_same_instant_fires_once() -> None:
    # 02:30 (skipped) and 03:30 name the same instant that day: one firing
    got = firings("30 2,3 * * *", PARIS, utc(2026, 3, 28, 23), 3)
    assert got == [utc(2026, 3, 29, 1, 30), utc(2026, 3, 30, 0, 30), utc(2026, 3, 30, 1, 30)]


def test_fall_back_a_repeated_time_fires_once_at_its_first_occurrence() -> None:
    # Paris, 2026-10-25: 03:00 CEST -> 02:00 CET. 02:30 happens twice.
    got = firings("30 2 * * *", PARIS, utc(2026, 10, 24, 12), 3)
    assert got == [
        utc(2026, 10, 25, 0, 30),  # 02:30 CEST, the first one
        utc(2026, 10, 26, 1, 30),  # next day, 02:30 CET
        utc(2026, 10, 27, 1, 30),
    ]


def test_fall_back_every_minute_never_repeats_an_instant() -> None:
    got = firings("*/15 * * * *", NEW_YORK, utc(2026, 11, 1, 4, 50), 12)
    assert got == sorted(set(got))
    # 01:00-01:59 happens twice in New York; the repeated hour is not fired again
    local = [t.astimezone(cron.zone(NEW_YORK)) for t in got]
    assert [(t.hour, t.minute) for t in local][:8] == [
        (1, 0), (1, 15), (1, 30), (1, 45), (2, 0), (2, 15), (2, 30), (2, 45),
    ]  # fmt: skip
    assert got[4] - got[3] == timedelta(hours=1, minutes=15)


def test_spring_forward_every_minute_keeps_order() -> None:
    got = firings("*/30 * * * *", NEW_YORK, utc(2026, 3, 8, 6), 5)
    assert got == sorted(got)
    assert len(set(got)) == 5


def test_weekdays_by_number_and_name_sunday_is_0_and_7() -> None:
    # 2026-01-05 is a Monday
    start = utc(2026, 1, 5)
    assert firings("0 12 * * 1", "UTC", start, 1) == [utc(2026, 1, 5, 12)]
    assert firings("0 12 * * mon", "UTC", start, 1) == [utc(2026, 1, 5, 12)]
    assert firings("0 12 * * 0", "UTC", start, 1) == [utc(2026, 1, 11, 12)]
    assert firings("0 12 * * 7", "UTC", start, 1) == [utc(2026, 1, 11, 12)]
    assert firings("0 12 * * 6-7", "UTC", start, 2) == [utc(2026, 1, 10, 12), utc(2026, 1, 11, 12)]


def test_day_of_month_or_day_of_week_when_both_are_restricted() -> None:
    # the 15th, or any Friday (2026-01-09 is a Friday)
    got = firings("0 0 15 * 5", "UTC", utc(2026, 1, 5), 3)
    assert got == [utc(2026, 1, 9), utc(2026, 1, 15), utc(2026, 1, 16)]
    # day of week '*': only the 15th
    assert firings("0 0 15 * *", "UTC", utc(2026, 1, 5), 2) == [utc(2026, 1, 15), utc(2026, 2, 15)]


def test_a_rare_date_is_found_years_ahead() -> None:
    assert firings("0 0 29 2 *", "UTC", utc(2026, 3, 1), 1) == [utc(2028, 2, 29)]


def test_macros() -> None:
    assert firings("@hourly", "UTC", utc(2026, 1, 1, 0, 5), 1) == [utc(2026, 1, 1, 1)]
    assert firings("@weekly", "UTC", utc(2026, 1, 5), 1) == [utc(2026, 1, 11)]


@pytest.mark.parametrize(
    "expression",
    ["* * * *", "60 * * * *", "* 24 * * *", "5-1 * * * *", "x * * * *", "* * * * 8", "*/0 * * * *"],
)
def test_bad_expressions_are_refused(expression: str) -> None:
    with pytest.raises(InvalidSchedule):
        cron.parse(expression)


def test_an_unknown_zone_is_refused() -> None:
    with pytest.raises(InvalidSchedule):
        cron.parse("* * * * *", "Mars/Olympus")


def test_a_schedule_that_never_fires_says_so() -> None:
    with pytest.raises(InvalidSchedule):
        cron.parse("0 0 31 2 *").next_after(utc(2026, 1, 1))


def test_weekly_rule_expression() -> None:
    expression = cron.weekly(["mon", "fri"], "19:05")
    assert expression == "5 19 * * mon,fri"
    # 2026-01-09 is a Friday
    assert firings(expression, PARIS, utc(2026, 1, 6), 2) == [
        utc(2026, 1, 9, 18, 5),
        utc(2026, 1, 12, 18, 5),
    ]


@given(
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1)),
    st.sampled_from(["UTC", PARIS, NEW_YORK, "Australia/Lord_Howe", "Asia/Kolkata"]),
    st.sampled_from(["*/7 * * * *", "30 2 * * *", "0 1,2,3 * * 0", "15 */5 1-10 * *"]),
)
def test_property_firings_are_after_increasing_and_on_the_schedule(
    start: datetime, zone: str, expression: str
) -> None:
    schedule = cron.parse(expression, zone)
    moment = start.replace(tzinfo=UTC)
    for _ in range(5):
        following = schedule.next_after(moment)
        assert following > moment
        assert following.second == 0 and following.microsecond == 0
        assert schedule.next_after(following - timedelta(microseconds=1)) == following
        local = following.astimezone(schedule.zone)
        assert schedule.fires_on(local.date())
        if (local.hour, local.minute) not in {
            (h, m) for h in schedule.hours for m in schedule.minutes
        }:
            # only a wall time skipped by a spring-forward fires off its wall time, late by
            # the gap (read with the offset before it)
            before = (following - timedelta(hours=3)).astimezone(schedule.zone)
            assert before.utcoffset() != local.utcoffset(), local
        moment = following


# --- the timers' firing rule -----------------------------------------------------------------


def test_a_due_timer_fires_for_its_due_instant_and_moves_to_the_next() -> None:
    schedule = cron.parse("* * * * *")
    due = utc(2026, 1, 1, 10, 0)
    firing = timers.fire(schedule, due, utc(2026, 1, 1, 10, 0, 0, 200_000))
    assert firing.scheduled_at == due
    assert firing.lateness == timedelta(milliseconds=200)
    assert firing.next_fire_at == utc(2026, 1, 1, 10, 1)


def test_missed_periods_fire_once_with_the_lateness_recorded() -> None:
    schedule = cron.parse("*/5 * * * *")
    due = utc(2026, 1, 1, 10, 0)
    firing = timers.fire(schedule, due, utc(2026, 1, 1, 13, 2))  # down for three hours
    assert firing.scheduled_at == due
    assert firing.lateness == timedelta(hours=3, minutes=2)
    assert firing.next_fire_at == utc(2026, 1, 1, 13, 5)  # the 35 missed periods are skipped


def test_a_timer_that_is_not_due_does_not_fire() -> None:
    with pytest.raises(ValueError):
        timers.fire(cron.parse("* * * * *"), utc(2026, 1, 1, 10, 1), utc(2026, 1, 1, 10))


def test_arm_is_strictly_after_now() -> None:
    assert timers.arm(cron.parse("0 * * * *"), utc(2026, 1, 1, 10)) == utc(2026, 1, 1, 11)


def test_rule_timers_each_side_on_its_own() -> None:
    import uuid

    env, org = uuid.uuid4(), uuid.uuid4()
    specs = timers.rule_timers(
        environment_id=env,
        organization_id=org,
        auto_stop=True,
        auto_start=False,
        weekdays=["mon", "tue"],
        start_time="08:00",
        stop_time="19:30",
        timezone=PARIS,
    )
    stop = specs[timers.TimerKind.ENV_STOP]
    assert stop is not None and stop.expression == "30 19 * * mon,tue"
    assert stop.timezone == PARIS and stop.target_id == env
    assert specs[timers.TimerKind.ENV_START] is None


def test_latest_due_is_the_last_missed_instant() -> None:
    schedule = cron.parse(cron.weekly(["mon", "fri"], "19:00"))
    # due Friday 2026-01-09 19:00, back Tuesday 2026-01-13 08:00: Monday's is the last missed
    assert timers.latest_due(schedule, utc(2026, 1, 9, 19), utc(2026, 1, 13, 8)) == utc(
        2026, 1, 12, 19
    )
    assert timers.latest_due(schedule, utc(2026, 1, 9, 19), utc(2026, 1, 9, 19)) == utc(
        2026, 1, 9, 19
    )


def test_a_side_older_than_the_other_sides_last_instant_is_superseded() -> None:
    assert timers.superseded(utc(2026, 1, 9, 19), utc(2026, 1, 12, 8))
    assert not timers.superseded(utc(2026, 1, 12, 8), utc(2026, 1, 9, 19))
    assert not timers.superseded(utc(2026, 1, 12, 8), None)


def test_rule_sides_are_each_others_siblings() -> None:
    assert timers.TimerKind.ENV_STOP.sibling is timers.TimerKind.ENV_START
    assert timers.TimerKind.ENV_START.sibling is timers.TimerKind.ENV_STOP
    assert timers.TimerKind.CRON.sibling is None
