"""The organizations' live event streams: positions, the bounded buffer a resume is served from.

A stream reads ``deployer.deployment.v1`` (every partition, no consumer group). Its resume point
(the SSE ``id``, sent back as ``Last-Event-ID``) is a *position*: for each partition, the offset
of the next record not yet passed. Invariants:

- Every event of the organization at an offset below the position (on its partition) has been
  delivered to the client or filtered out for it; none at or above has. So a resume misses
  nothing and repeats nothing, and, since Kafka keeps the records, a position stays valid after
  a gateway restart and on any other gateway instance (within the topic's retention).
- Positions only grow; the event after a position carries a position componentwise at least as
  large (records of one partition are read in order).
- The buffer holds, per organization, the newest events since a *floor* position: a position is
  served from the buffer only when it is at or above the floor on every partition; below it, a
  reader must read the records again from Kafka (the buffer evicted what it needs, or the
  gateway started after it). Memory is bounded twice: events per organization and organizations.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

MAX_OFFSET = 2**63 - 1


class BadPosition(ValueError):
    """A ``Last-Event-ID`` that is no position of this stream."""


@dataclass(frozen=True)
class Position:
    offsets: tuple[int, ...]

    def encode(self) -> str:
        return "-".join(str(o) for o in self.offsets)

    @classmethod
    def parse(cls, value: str, partitions: int) -> Position:
        parts = value.split("-")
        # ASCII digits only (``str.isdigit`` takes ``²``, which ``int`` refuses)
        if len(parts) != partitions or not all(p.isascii() and p.isdigit() for p in parts):
            raise BadPosition(value)
        offsets = tuple(int(p) for p in parts)
        if any(o > MAX_OFFSET for o in offsets):
            raise BadPosition(value)
        return cls(offsets)

    def at_least(self, other: Position) -> bool:
        return all(mine >= theirs for mine, theirs in zip(self.offsets, other.offsets, strict=True))

    def join(self, other: Position) -> Position:
        """Componentwise maximum: what either position says was passed, was."""
        pairs = zip(self.offsets, other.offsets, strict=True)
        return Position(tuple(max(a, b) for a, b in pairs))

    def passed(self, partition: int, offset: int) -> Position:
        """After the record at ``offset`` on ``partition``."""
        offsets = list(self.offsets)
        offsets[partition] = max(offsets[partition], offset + 1)
        return Position(tuple(offsets))

    def includes(self, partition: int, offset: int) -> bool:
        """Whether the record is at or above this position (not passed yet)."""
        return offset >= self.offsets[partition]


@dataclass(frozen=True)
class StreamEvent:
    """One deployment or status event as the organization's followers receive it."""

    partition: int
    offset: int
    organization_id: uuid.UUID
    environment_id: uuid.UUID
    type: str
    body: dict[str, Any]  # the public form (``public_event``)
    after: Position  # the reader's position once it had read this record


def public_event(envelope: dict[str, Any], project_id: uuid.UUID | None) -> dict[str, Any]:
    """What a follower is sent: the envelope without its tracing fields, and the project."""
    data = envelope["data"]
    return {
        "id": str(envelope["id"]),
        "type": envelope["type"],
        "occurred_at": envelope["occurred_at"],
        "organization_id": str(data["organization_id"]),
        "project_id": str(project_id) if project_id else None,
        "environment_id": str(data["environment_id"]),
        "deployment_id": data.get("deployment_id"),
        "data": data,
    }


@dataclass
class _OrganizationLog:
    floor: Position
    events: deque[StreamEvent]


@dataclass
class EventBuffer:
    """The newest events of each organization, for resumes; fed in the reader's order."""

    partitions: int
    per_organization: int = 1000
    organizations: int = 1000
    position: Position = field(init=False)
    # the floor of an organization holding no log: where the reader started, raised each
    # time a whole organization's log is evicted
    _floor: Position = field(init=False)
    _logs: OrderedDict[uuid.UUID, _OrganizationLog] = field(default_factory=OrderedDict)

    def __post_init__(self) -> None:
        self.start(Position((0,) * self.partitions))

    def start(self, position: Position) -> None:
        """The reader (re)starts at ``position``: everything held before is forgotten."""
        self.position = self._floor = position
        self._logs.clear()

    def add(self, event: StreamEvent) -> None:
        org = event.organization_id
        log = self._logs.get(org)
        if log is None:
            log = self._logs[org] = _OrganizationLog(self._floor, deque())
            self._evict_organizations()
        self._logs.move_to_end(org)
        log.events.append(event)
        if len(log.events) > self.per_organization:
            gone = log.events.popleft()
            log.floor = log.floor.passed(gone.partition, gone.offset)
        self.position = self.position.join(event.after)

    def advance(self, position: Position) -> None:
        """The reader passed records of no interest (or control records) up to ``position``."""
        self.position = self.position.join(position)

    def _evict_organizations(self) -> None:
        while len(self._logs) > self.organizations:
            self._logs.popitem(last=False)
            self._floor = self.position

    def covers(self, organization_id: uuid.UUID, position: Position) -> bool:
        log = self._logs.get(organization_id)
        return position.at_least(log.floor if log is not None else self._floor)

    def after(self, organization_id: uuid.UUID, position: Position) -> Sequence[StreamEvent]:
        """The organization's held events not passed at ``position``, in the reader's order."""
        log = self._logs.get(organization_id)
        if log is None:
            return ()
        return [e for e in log.events if position.includes(e.partition, e.offset)]
