"""Daily partitions of the log lines, by the time a line was stored (UTC days).

Why storage time and not the line's own time: a line's ``at`` comes from its producer (another
machine's clock, or an event replayed from a dead-letter topic days later), so partitioning on
it would send rows to partitions that do not exist or were already dropped. Storage time always
lands in today's partition, and because cursors are given in storage order, dropping the oldest
partition removes a *prefix* of every stream: a follower never finds a hole in the middle.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, timedelta

PREFIX = "log_lines_"
_NAME = re.compile(r"^log_lines_(\d{8})$")


def name(day: date) -> str:
    return f"{PREFIX}{day:%Y%m%d}"


def day_of(partition: str) -> date | None:
    match = _NAME.match(partition)
    if match is None:
        return None
    digits = match.group(1)
    return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))


def ahead(today: date, days: int) -> list[date]:
    """Today and the ``days`` after it: created in advance, so that ingest never waits on DDL
    at midnight."""
    return [today + timedelta(days=n) for n in range(days + 1)]


def expired(partitions: Iterable[str], today: date, retention_days: int) -> list[str]:
    """Partitions all of whose lines were stored more than ``retention_days`` ago: a day's
    partition goes once its last instant is older than that (oldest first)."""
    oldest_kept = today - timedelta(days=retention_days)
    found = [(day_of(p), p) for p in partitions]
    return [p for d, p in sorted((d, p) for d, p in found if d is not None) if d < oldest_kept]
