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
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

PART_BYTES = 16 * 1024
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
