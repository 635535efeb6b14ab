"""Reading a stream back: what a request asks for, and the page it gets.

Cursors are the only positions: ``after=c`` reads forward from the line after ``c``,
``before=c`` (and ``tail=N``) reads backward from the line before ``c`` (from the end), and
every page is answered oldest first. ``next_cursor`` is what to pass as ``after`` for the
following page, ``prev_cursor`` what to pass as ``before`` for the preceding one; each is null
when the read knows nothing lies that way (at the time of the read: a stream grows, so a
follower keeps asking ``after`` its last cursor).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from slipway_libs.errors import InvalidInput
from slipway_logs.domain.lines import MAX_QUERY_CHARS as MAX_QUERY_CHARS  # the longest q
from slipway_logs.domain.lines import Line, OutputStream, search_words

MAX_LIMIT = 5000
DEFAULT_LIMIT = 500
# a page's text, at most (whatever ``limit``): 5,000 lines of 16,000 characters were up to 320 MB
# held by the service and again by the gateway, per request
MAX_PAGE_BYTES = 4 * 1024 * 1024

Direction = Literal["forward", "backward"]


@dataclass(frozen=True, kw_only=True)
class LogQuery:
    since: datetime | None = None  # the line's time, inclusive
    until: datetime | None = None  # exclusive
    stream: OutputStream | None = None
    q: str | None = None  # a substring, case-insensitive
    tail: int | None = None
    limit: int = DEFAULT_LIMIT
    after: int | None = None
    before: int | None = None

    def __post_init__(self) -> None:
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise InvalidInput(
                "LOGS_BAD_TIME_RANGE", "since must come before until.", field="since"
            )
        if self.tail is not None and (self.after is not None or self.before is not None):
            raise InvalidInput(
                "LOGS_TAIL_WITH_CURSOR",
                "tail reads the end: give it no after or before.",
                field="tail",
            )
        if self.after is not None and self.before is not None and self.after >= self.before:
            raise InvalidInput(
                "LOGS_BAD_CURSOR_RANGE", "after must be below before.", field="after"
            )
        if self.q is not None and any(ord(c) < 32 or ord(c) == 127 for c in self.q):
            raise InvalidInput("LOGS_BAD_SEARCH", "q cannot hold control characters.", field="q")

    @property
    def direction(self) -> Direction:
        """Backward from the end (``tail``) or from ``before`` alone; forward otherwise."""
        if self.tail is not None or (self.before is not None and self.after is None):
            return "backward"
        return "forward"

    @property
    def size(self) -> int:
        return self.tail if self.tail is not None else self.limit

    def search_words(self) -> list[str]:
        """The words of ``q`` that the search chunks are looked up by (none: no ``q``, or too
        short a word for a trigram index)."""
        return search_words(self.q) if self.q else []

    def pattern(self) -> str | None:
        """``q`` as an ILIKE pattern: its own ``%``, ``_`` and ``\\`` match themselves."""
        if not self.q:
            return None
        escaped = self.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return f"%{escaped}%"


@dataclass(frozen=True, kw_only=True)
class Page:
    items: list[Line]
    next_cursor: int | None
    prev_cursor: int | None
    head_cursor: int  # the stream's newest cursor when read (0: nothing stored yet)


def chosen(query: LogQuery, found: Sequence[int]) -> tuple[list[int], bool]:
    """The cursors of the page from those the database found (``size + 1`` at most, in the
    query's direction), oldest first, and whether more lay beyond them."""
    more = len(found) > query.size
    taken = list(found[: query.size])
    if query.direction == "backward":
        taken.reverse()
    return taken, more


def within_budget(
    query: LogQuery,
    cursors: Sequence[int],
    sizes: Mapping[int, int],
    *,
    more: bool,
    budget: int = MAX_PAGE_BYTES,
) -> tuple[list[int], bool]:
    """The page's cursors (oldest first) cut to ``budget`` bytes of text (``sizes``: a line's
    bytes by cursor), one line at least: a forward page keeps its oldest lines, a backward one
    (``tail``, ``before``) its newest, and what was cut lies beyond (``more``), read with the
    next or previous cursor as usual."""
    ordered = list(cursors) if query.direction == "forward" else list(reversed(cursors))
    kept: list[int] = []
    total = 0
    for cursor in ordered:
        size = sizes.get(cursor, 0)
        if kept and total + size > budget:
            break
        kept.append(cursor)
        total += size
    if len(kept) == len(ordered):
        return list(cursors), more
    return (kept if query.direction == "forward" else kept[::-1]), True


def page(query: LogQuery, lines: list[Line], *, more: bool, head: int) -> Page:
    if not lines:
        return Page(items=[], next_cursor=None, prev_cursor=None, head_cursor=head)
    first, last = lines[0].cursor, lines[-1].cursor
    if query.direction == "forward":
        next_cursor = last if more else None
        prev_cursor = first if query.after is not None else None
    else:
        prev_cursor = first if more else None
        next_cursor = last if query.before is not None else None
    return Page(items=lines, next_cursor=next_cursor, prev_cursor=prev_cursor, head_cursor=head)
