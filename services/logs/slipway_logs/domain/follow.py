"""Following a stream: what a follower's bounded buffer keeps, what it drops, and when a follow
sends a heartbeat or ends.

Invariants:
- A follower's buffer holds at most ``capacity`` lines and ``max_bytes`` of their text (UTF-8;
  a single line larger than that is kept when the buffer is empty, so a follower is never
  stuck). A line that finds it full is dropped,
  never an older one: what the follower already has stays a prefix of the stream, and the
  dropped lines form gaps between kept ones.
- Every gap is reported in its place, as a ``Skipped`` between the last line kept before it and
  the first kept after it (or at the end of what is taken): ``count`` lines (of those the
  follower's filters let through) with cursors in ``(from_cursor, to_cursor]``; reading the
  stream ``after=from_cursor`` with the same filters gets them back. Nothing is lost silently.
- A line at or below the newest cursor the buffer has seen is ignored (a stream's lines arrive
  in cursor order; an older one is a repeat).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from slipway_logs.domain.lines import Line, OutputStream


@dataclass(frozen=True, kw_only=True)
class Skipped:
    count: int  # lines dropped
    from_cursor: int  # read ``after`` this cursor to get them back
    to_cursor: int  # the newest of them


@dataclass(frozen=True, kw_only=True)
class LineFilter:
    """The read API's ``stream``, ``q`` and ``since``, applied to lines as they arrive."""

    stream: OutputStream | None = None
    q: str | None = None  # a substring, case-insensitive (as ``ILIKE``)
    since: datetime | None = None

    def accepts(self, line: Line) -> bool:
        if self.stream is not None and line.stream != self.stream:
            return False
        if self.since is not None and line.at < self.since:
            return False
        return not self.q or self.q.lower() in line.text.lower()


class Backlog:
    """One follower's buffer between the stream's reader and the follower's connection."""

    def __init__(self, *, capacity: int, start: int, max_bytes: int | None = None) -> None:
        if capacity < 1:
            raise ValueError("a backlog holds at least one line")
        self.capacity = capacity
        self.max_bytes = max_bytes
        self._items: deque[Line | Skipped] = deque()
        self._lines = 0
        self._bytes = 0
        self._seen = start  # the newest cursor offered (kept or dropped)
        self._kept = start  # the newest cursor kept: where a gap opens
        self._gap: Skipped | None = None

    @property
    def lines(self) -> int:
        return self._lines

    def offer(self, line: Line) -> bool:
        """Keep ``line`` if there is room (True); else count it in the open gap."""
        if line.cursor <= self._seen:
            return False
        self._seen = line.cursor
        size = len(line.text.encode())
        if self._lines >= self.capacity or self._over_bytes(size):
            gap = self._gap or Skipped(count=0, from_cursor=self._kept, to_cursor=line.cursor)
            self._gap = replace(gap, count=gap.count + 1, to_cursor=line.cursor)
            return False
        if self._gap is not None:
            self._items.append(self._gap)
            self._gap = None
        self._items.append(line)
        self._lines += 1
        self._bytes += size
        self._kept = line.cursor
        return True

    def _over_bytes(self, size: int) -> bool:
        if self.max_bytes is None or self._lines == 0:
            return False
        return self._bytes + size > self.max_bytes

    def take(self) -> list[Line | Skipped]:
        """Everything buffered, oldest first, and the gap still open at the end, if any: the
        room is free again."""
        taken = list(self._items)
        self._items.clear()
        self._lines = 0
        self._bytes = 0
        if self._gap is not None:
            taken.append(self._gap)
            self._gap = None
        return taken


class Places:
    """At most ``limit`` follows at once (a process's): a follow takes a place, and its
    ``release`` frees it (once, however many times it is called)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.taken = 0

    def take(self) -> Callable[[], None] | None:
        """The place's release, or None when every place is taken."""
        if self.taken >= self.limit:
            return None
        self.taken += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self.taken -= 1

        return release


Due = Literal["expired", "heartbeat"]


@dataclass(kw_only=True)
class Deadlines:
    """When a follow owes the client a heartbeat (after ``heartbeat_s`` of silence) and when it
    ends (``lifetime_s`` after it started), on a clock the caller reads (seconds)."""

    started: float
    heartbeat_s: float
    lifetime_s: float
    last_sent: float | None = None

    def sent(self, now: float) -> None:
        self.last_sent = now

    def due(self, now: float) -> Due | None:
        if now >= self.started + self.lifetime_s:
            return "expired"
        if now >= self._heartbeat_at():
            return "heartbeat"
        return None

    def wait_s(self, now: float) -> float:
        """How long to wait for lines before something is due (0: it is due)."""
        return max(0.0, min(self.started + self.lifetime_s, self._heartbeat_at()) - now)

    def _heartbeat_at(self) -> float:
        return (self.started if self.last_sent is None else self.last_sent) + self.heartbeat_s
