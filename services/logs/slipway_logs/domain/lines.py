"""Log lines as the logs service stores them: which stream a line belongs to, and long lines
split into ordered parts that are joined back on the way out.

- A **stream** is what a client pages and follows: a deployment's lines (its build and deploy
  lines, keyed by the deployment id) or a service's live lines (keyed by the service id).
- A line longer than ``PART_BYTES`` (UTF-8) is stored as parts ``1..parts`` that share the
  line's cursor; joining them in part order gives the line back byte for byte. A part never
  ends inside a character, so every part is valid text on its own.
- A part after the first carries the last ``MAX_QUERY_CHARS - 1`` characters of the part before
  it (``overlap``), searched with its text: a ``q`` found across the split of two parts is found
  in the second one's ``overlap + text`` (a ``q`` has at most ``MAX_QUERY_CHARS`` characters).
- ``q`` is answered from **search chunks**, not from a trigram index over every line: a chunk
  holds the distinct words (runs of letters and digits) of consecutive lines of one stream
  stored by one batch, and their cursor range. Each word of a ``q`` (a run of letters and
  digits) lies inside a word of every line that holds the ``q``, so a chunk holding every word
  of the ``q`` as a substring bounds where the matching lines can be; the lines are then
  checked one by one. A trigram index over chunks' words costs a fraction of one over every
  line: PostgreSQL extracts and sorts the trigrams of each distinct word of a chunk once,
  instead of those of every word of every line (log lines repeat their words a lot).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

PART_BYTES = 16 * 1024
# a search chunk closes at the first line boundary past this many characters of lines: big enough
# to share words between many lines, small enough that a chunk matching ``q`` is cheap to check
CHUNK_CHARS = 32 * 1024
# a word, for search: letters and digits (pg_trgm's words are made of them too)
WORD = re.compile(r"[^\W_]+")
MAX_QUERY_CHARS = 256  # the longest ``q``

StreamKind = Literal["deployment", "service"]
LineKind = Literal["build", "deploy", "live"]
OutputStream = Literal["stdout", "stderr", "system"]


class NoStream(ValueError):
    """The event names no stream its lines could belong to (e.g. a deploy line without its
    deployment): it can never be stored."""


def stream_of(
    kind: LineKind,
    *,
    deployment_id: uuid.UUID | None,
    build_id: uuid.UUID | None,
    service_id: uuid.UUID | None,
) -> tuple[StreamKind, uuid.UUID]:
    """The stream a batch of lines goes to: a deployment's for build and deploy lines (a build
    outside any deployment is its own stream), the service's for live lines."""
    if kind == "live":
        if service_id is None:
            raise NoStream("live lines without a service_id")
        return "service", service_id
    stream_id = deployment_id or (build_id if kind == "build" else None)
    if stream_id is None:
        raise NoStream(f"{kind} lines without a deployment_id")
    return "deployment", stream_id


def clean(text: str) -> str:
    """PostgreSQL text cannot hold NUL: it becomes U+FFFD rather than failing the batch."""
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def split(text: str, limit: int = PART_BYTES) -> list[str]:
    """``text`` in parts of at most ``limit`` UTF-8 bytes, never cut inside a character."""
    data = text.encode()
    if len(data) <= limit:
        return [text]
    parts = []
    start = 0
    while start < len(data):
        end = min(start + limit, len(data))
        while end < len(data) and (data[end] & 0xC0) == 0x80:  # a continuation byte
            end -= 1
        parts.append(data[start:end].decode())
        start = end
    return parts


@dataclass(frozen=True, kw_only=True)
class Part:
    """One stored row: a whole line (part 1 of 1) or one part of a long one."""

    cursor: int
    part: int
    parts: int
    at: datetime
    kind: LineKind
    stream: OutputStream
    service_id: uuid.UUID | None
    build_id: uuid.UUID | None
    text: str
    overlap: str = ""  # the end of the part before (searched, never answered)


@dataclass(frozen=True, kw_only=True)
class Line:
    """A line as the read API answers it: its parts joined."""

    cursor: int
    at: datetime
    kind: LineKind
    stream: OutputStream
    service_id: uuid.UUID | None
    build_id: uuid.UUID | None
    text: str


def join(parts: Iterable[Part]) -> list[Line]:
    """Lines from their parts (in any order), in cursor order."""
    by_cursor: dict[int, list[Part]] = {}
    for part in parts:
        by_cursor.setdefault(part.cursor, []).append(part)
    lines = []
    for cursor in sorted(by_cursor):
        ordered = sorted(by_cursor[cursor], key=lambda p: p.part)
        first = ordered[0]
        lines.append(
            Line(
                cursor=cursor,
                at=first.at,
                kind=first.kind,
                stream=first.stream,
                service_id=first.service_id,
                build_id=first.build_id,
                text="".join(p.text for p in ordered),
            )
        )
    return lines


@dataclass(frozen=True, kw_only=True)
class IncomingLine:
    at: datetime
    stream: OutputStream
    text: str


@dataclass(frozen=True, kw_only=True)
class Append:
    """The lines of one event, bound for one stream."""

    stream_kind: StreamKind
    stream_id: uuid.UUID
    organization_id: uuid.UUID
    environment_id: uuid.UUID | None
    kind: LineKind
    service_id: uuid.UUID | None
    build_id: uuid.UUID | None
    lines: Sequence[IncomingLine]


@dataclass(frozen=True, kw_only=True)
class StreamGrowth:
    """How many lines one batch adds to one stream."""

    stream_kind: StreamKind
    stream_id: uuid.UUID
    organization_id: uuid.UUID
    environment_id: uuid.UUID | None
    lines: int


def growth(appends: Sequence[Append]) -> list[StreamGrowth]:
    """Lines per stream, ordered by stream id: every ingest locks its streams' counters in this
    one order, so two concurrent ingests never deadlock."""
    counts: dict[uuid.UUID, StreamGrowth] = {}
    for append in appends:
        known = counts.get(append.stream_id)
        total = (known.lines if known else 0) + len(append.lines)
        counts[append.stream_id] = StreamGrowth(
            stream_kind=append.stream_kind,
            stream_id=append.stream_id,
            organization_id=append.organization_id,
            environment_id=append.environment_id,
            lines=total,
        )
    return [counts[k] for k in sorted(counts, key=str) if counts[k].lines]


def overlap(before: str) -> str:
    """What a part carries of the part ``before`` it: just enough for any ``q`` that starts
    there and ends in this part."""
    return before[len(before) - (MAX_QUERY_CHARS - 1) :] if before else ""


@dataclass(frozen=True, kw_only=True)
class Row:
    """A part bound for one stream, with the ids its row carries."""

    stream_id: uuid.UUID
    organization_id: uuid.UUID
    part: Part


def rows(appends: Sequence[Append], last_cursors: dict[uuid.UUID, int]) -> list[Row]:
    """The rows of a batch: cursors ``last - n + 1 .. last`` of each stream given, in the order
    of the events and of their lines (``last_cursors``: each stream's counter after the batch)."""
    counts = {g.stream_id: g.lines for g in growth(appends)}
    next_cursor = {sid: last_cursors[sid] - n + 1 for sid, n in counts.items()}
    out = []
    for append in appends:
        for line in append.lines:
            cursor = next_cursor[append.stream_id]
            next_cursor[append.stream_id] = cursor + 1
            texts = split(clean(line.text))
            for number, text in enumerate(texts, start=1):
                before = texts[number - 2] if number > 1 else ""
                part = Part(
                    cursor=cursor,
                    part=number,
                    parts=len(texts),
                    at=line.at,
                    kind=append.kind,
                    stream=line.stream,
                    service_id=append.service_id,
                    build_id=append.build_id,
                    text=text,
                    overlap=overlap(before),
                )
                out.append(
                    Row(
                        stream_id=append.stream_id,
                        organization_id=append.organization_id,
                        part=part,
                    )
                )
    return out


@dataclass(frozen=True, kw_only=True)
class Chunk:
    """The distinct words of the whole lines ``first_cursor..last_cursor`` of one stream (one
    batch's), separated by spaces, in the order they first came."""

    stream_id: uuid.UUID
    organization_id: uuid.UUID
    first_cursor: int
    last_cursor: int
    words: str


def chunks(rows: Sequence[Row], limit: int = CHUNK_CHARS) -> list[Chunk]:
    """The search chunks of a batch's rows (as ``rows`` gives them: a stream's in cursor order,
    each line's parts together): per stream, whole lines until ``limit`` characters are passed."""
    by_stream: dict[uuid.UUID, list[Row]] = {}
    for row in rows:
        by_stream.setdefault(row.stream_id, []).append(row)
    out = []
    for stream_rows in by_stream.values():
        pending: list[Row] = []
        size = 0
        for row in stream_rows:
            if pending and row.part.part == 1 and size >= limit:
                out.append(_chunk(pending))
                pending, size = [], 0
            pending.append(row)
            size += len(row.part.overlap) + len(row.part.text) + 1
        if pending:
            out.append(_chunk(pending))
    return out


def _chunk(rows: Sequence[Row]) -> Chunk:
    return Chunk(
        stream_id=rows[0].stream_id,
        organization_id=rows[0].organization_id,
        first_cursor=rows[0].part.cursor,
        last_cursor=rows[-1].part.cursor,
        # the overlap too: a word cut by the split of a long line is whole in the next part;
        # one regex pass over the chunk (a newline is no word character: words stay apart)
        words=" ".join(
            dict.fromkeys(WORD.findall("\n".join(r.part.overlap + r.part.text for r in rows)))
        ),
    )


def search_words(q: str) -> list[str]:
    """The words of a ``q`` a chunk must hold for a line of it to match: those long enough for
    a trigram (a shorter one would make its index read every entry)."""
    return [word for word in WORD.findall(q) if len(word) >= 3]
