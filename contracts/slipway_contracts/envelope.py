"""The event envelope every Slipway event travels in.

The envelope is compatible with CloudEvents 1.0 attributes (``id``, ``type``, ``source``,
``subject``, ``time`` as ``occurred_at``, ``data``) and adds what Slipway needs to route, order,
trace and deduplicate: ``version`` (the payload's major version), ``organization_id`` (the tenant),
``correlation_id`` (one user intent, across services) and ``causation_id`` (the event or request
that directly caused this one). ``subject`` is the aggregate id and also the Kafka key, so one
aggregate's events stay ordered. The W3C ``traceparent`` travels in the Kafka headers, not here.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field


class EventPayload(BaseModel):
    """Base of every event payload.

    Subclasses set ``event_type`` (``<producer>.<EventName>``), ``event_version`` (major) and
    ``topic``. Unknown fields are ignored on read so that producers may add optional fields
    inside a major version without breaking older consumers.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_type: ClassVar[str]
    event_version: ClassVar[int] = 1
    topic: ClassVar[str]


class Envelope(BaseModel):
    """One event as it is stored in an outbox and published on a topic."""

    model_config = ConfigDict(frozen=True)

    specversion: str = "1.0"
    id: uuid.UUID
    type: str
    version: int = Field(ge=1)
    occurred_at: datetime
    source: str
    subject: str
    organization_id: uuid.UUID | None = None
    correlation_id: str
    causation_id: str | None = None
    data: dict[str, Any]

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_json(cls, raw: bytes | str) -> Self:
        return cls.model_validate_json(raw)


def new_event(
    payload: EventPayload,
    *,
    subject: str,
    source: str,
    organization_id: uuid.UUID | None = None,
    correlation_id: str | None = None,
    causation_id: str | None = None,
    event_id: uuid.UUID | None = None,
    occurred_at: datetime | None = None,
) -> Envelope:
    """Wrap a payload in a fresh envelope; a new correlation id starts a new causal chain."""
    eid = event_id or uuid.uuid4()
    return Envelope(
        id=eid,
        type=payload.event_type,
        version=payload.event_version,
        occurred_at=occurred_at or datetime.now(UTC),
        source=source,
        subject=subject,
        organization_id=organization_id,
        correlation_id=correlation_id or str(eid),
        causation_id=causation_id,
        data=payload.model_dump(mode="json"),
    )
