"""Audit records: what every service publishes about each state-changing action.

Each producer has its own event type and topic (``<producer>.AuditRecorded`` on
``<producer>.audit.v1``) carrying the same fields; the identity service consumes them all into the
organization's audit log.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from slipway_contracts.envelope import EventPayload

ActorType = Literal["user", "api_token", "system"]
Origin = Literal["api", "cli", "git", "scheduler", "system"]


class AuditRecorded(EventPayload):
    """One state-changing action: who did what to which target, from where, and the change."""

    organization_id: uuid.UUID
    actor_type: ActorType
    actor_id: str | None = None
    actor_name: str | None = None
    origin: Origin = "api"
    action: str
    target_type: str
    target_id: str
    target_name: str | None = None
    project_id: uuid.UUID | None = None
    environment_id: uuid.UUID | None = None
    change: dict[str, Any] | None = None
    occurred_at: datetime


def audit_topic(producer: str) -> str:
    return f"{producer}.audit.v1"


def _for(producer: str) -> type[AuditRecorded]:
    return type(
        f"{producer.capitalize()}AuditRecorded",
        (AuditRecorded,),
        {
            "event_type": f"{producer}.AuditRecorded",
            "topic": audit_topic(producer),
            "__module__": __name__,
            "__doc__": AuditRecorded.__doc__,
        },
    )


AUDIT_PRODUCERS = ("identity", "catalog", "builder", "deployer", "scheduler")
AUDIT_PAYLOADS: dict[str, type[AuditRecorded]] = {p: _for(p) for p in AUDIT_PRODUCERS}
PAYLOADS: tuple[type[EventPayload], ...] = tuple(AUDIT_PAYLOADS.values())
