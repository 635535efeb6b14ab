"""When a schedule fires next: 5-field cron expressions (Kubernetes CronJob syntax) and weekly
rules, evaluated on the wall clock of an IANA time zone.

Pure. Invariants (the unit tests walk each of them):
- ``next_after(after)`` is the first firing instant strictly after ``after``; applied again to
  its own answer it walks the firings in order, each once.
- **Spring forward** (a wall time that does not exist that day, e.g. 02:30 in Europe/Paris on
  the last Sunday of March) fires once, at the instant that wall time names with the offset in
  force before the change (03:30 local): the job runs late rather than not at all.
- **Fall back** (a wall time that happens twice) fires once, at its first occurrence.
- Day of month and day of week: when both are restricted (neither starts with ``*``), a day
  matching either fires (Vixie cron's rule); otherwise both must match. ``7`` is Sunday too.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# (name, lowest, highest, names counted from lowest)
_FIELDS: tuple[tuple[str, int, int, Sequence[str]], ...] = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)
_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# the longest gap between two firings: Feb 29 on a given weekday recurs within 28 years
_HORIZON_DAYS = 366 * 29
# more than any daylight-saving (or other) change of a zone's offset moves its wall clock
_SHIFT = timedelta(hours=3)


class InvalidSchedule(ValueError):
    """The expression is not a 5-field cron schedule, or it never fires."""


@dataclass(frozen=True)
class Schedule:
    """The wall-clock times at which something fires, in ``zone``."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]  # of the month, 1-31
    months: frozenset[int]  # 1-12
    weekdays: frozenset[int]  # 0 = Monday ... 6 = Sunday (Python's numbering)
    zone: ZoneInfo
    days_restricted: bool = False
    weekdays_restricted: bool = False

    def fires_on(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        in_month, in_week = day.day in self.days, day.weekday() in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return in_month or in_week
        return in_month and in_week

    # many timers share a schedule and a round fires them all at one ``now``: computed once
    @functools.lru_cache(maxsize=4096)  # noqa: B019 (schedules are few and immutable)
    def next_after(self, after: datetime) -> datetime:
        """The first firing strictly after ``after`` (an aware datetime), in UTC."""
        if after.tzinfo is None:
            raise ValueError("an aware datetime is needed")
        # Wall times map onto instants in order except across a transition, which moves them
        # by less than _SHIFT: look at wall times from _SHIFT before ``after`` to _SHIFT past
        # the best instant found.
        floor = _wall(after, self.zone) - _SHIFT
        best: datetime | None = None
        for day in self._days_from(floor.date()):
            for wall in self._walls(day):
                if wall < floor:
                    continue
                if best is not None and wall > _wall(best, self.zone) + _SHIFT:
                    return best
                moment = instant(day, wall.time(), self.zone)
                if moment > after and (best is None or moment < best):
                    best = moment
        if best is not None:
            return best
        raise InvalidSchedule("this schedule never fires")

    def _days_from(self, start: date) -> Iterator[date]:
        for offset in range(_HORIZON_DAYS):
            day = start + timedelta(days=offset)
            if self.fires_on(day):
                yield day

    def _walls(self, day: date) -> Iterator[datetime]:
        for hour in sorted(self.hours):
            for minute in sorted(self.minutes):
                yield datetime.combine(day, time(hour, minute))


def _wall(moment: datetime, zone: ZoneInfo) -> datetime:
    """The naive local wall time of an instant."""
    return moment.astimezone(zone).replace(tzinfo=None)


def instant(day: date, wall: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of a wall time; the first occurrence of a repeated one (fold 0), and for
    a skipped one the instant it names with the offset in force before the change."""
    return datetime.combine(day, wall, tzinfo=zone).astimezone(UTC)


@functools.lru_cache(maxsize=4096)
def parse(expression: str, timezone: str = "UTC") -> Schedule:
    """A cron expression (5 fields or an @macro) in an IANA time zone."""
    text = " ".join(expression.split()).lower()
    text = _MACROS.get(text, text)
    fields = text.split(" ")
    if len(fields) != 5:
        raise InvalidSchedule("5 fields: minute hour day-of-month month day-of-week")
    minutes, hours, days, months, weekdays = (
        _values(field, spec) for field, spec in zip(fields, _FIELDS, strict=True)
    )
    schedule = Schedule(
        minutes=frozenset(minutes),
        hours=frozenset(hours),
        days=frozenset(days),
        months=frozenset(months),
        # cron counts from Sunday = 0 (and 7); Python from Monday = 0
        weekdays=frozenset((d - 1) % 7 for d in weekdays),
        zone=zone(timezone),
        days_restricted=not fields[2].startswith("*"),
        weekdays_restricted=not fields[4].startswith("*"),
    )
    return schedule


def weekly(weekdays: Sequence[str], at: str) -> str:
    """A deployment rule's side as a cron expression: ``at`` (HH:MM) on each of ``weekdays``
    (``mon``...)."""
    hour, _, minute = at.partition(":")
    if not weekdays:
        raise InvalidSchedule("a weekly schedule needs at least one weekday")
    return f"{int(minute)} {int(hour)} * * {','.join(weekdays)}"


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ValueError, LookupError) as exc:  # ZoneInfoNotFoundError is a KeyError
        raise InvalidSchedule(f"unknown time zone {name!r}") from exc


def _values(text: str, spec: tuple[str, int, int, Sequence[str]]) -> set[int]:
    label, low, high, _ = spec
    values: set[int] = set()
    for item in text.split(","):
        base, slash, step_text = item.partition("/")
        step = _number(step_text, (label, 1, high, ())) if slash else 1
        if base == "*":
            start, end = low, high
        elif "-" in base:
            first, _, last = base.partition("-")
            start, end = _number(first, spec), _number(last, spec)
            if start > end:
                raise InvalidSchedule(f"{label}: the range {item!r} goes backwards")
        else:
            start = _number(base, spec)
            end = high if slash else start
        values.update(range(start, end + 1, step))
    return values


def _number(text: str, spec: tuple[str, int, int, Sequence[str]]) -> int:
    label, low, high, names = spec
    if text in names:
        return low + names.index(text)
    if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
        raise InvalidSchedule(f"{label}: {text!r} is not in {low}-{high}")
    return int(text)
