"""Writing audit records to the outbox, in the transaction of the change they describe."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from slipway_contracts.events.audit import AUDIT_PAYLOADS
from slipway_libs import outbox
from slipway_libs.actor import Actor


async def record(
    conn: asyncpg.Connection,
    *,
    producer: str,
    actor: Actor,
    organization_id: uuid.UUID,
    action: str,
    target_type: str,
    target_id: str | uuid.UUID,
    target_name: str | None = None,
    project_id: uuid.UUID | None = None,
    environment_id: uuid.UUID | None = None,
    change: dict[str, Any] | None = None,
) -> None:
    payload = AUDIT_PAYLOADS[producer](
        organization_id=organization_id,
        actor_type=actor.type,
        actor_id=actor.id,
        actor_name=actor.name,
        origin=actor.origin,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        target_name=target_name,
        project_id=project_id,
        environment_id=environment_id,
        change=change,
        occurred_at=datetime.now(UTC),
    )
    await outbox.publish(
        conn,
        payload,
        subject=str(organization_id),
        source=producer,
        organization_id=organization_id,
    )
