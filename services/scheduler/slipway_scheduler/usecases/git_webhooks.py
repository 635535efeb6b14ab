"""Managing an organization's incoming git webhook endpoints: create (the secret shown once),
list, read, delete, and read the deliveries each received. The secret is sealed at rest with
the scheduler's key, bound to the endpoint's id; the endpoint's public address is
``/api/v1/hooks/git/{id}`` on the gateway."""

from __future__ import annotations

import base64
import secrets
import uuid
from typing import Any

import asyncpg

from slipway_libs import audit
from slipway_libs.actor import Actor
from slipway_libs.crypto import Sealer
from slipway_libs.errors import Missing
from slipway_scheduler.db import git_queries as q
from slipway_scheduler.usecases.delivery_log import decode_cursor

SECRET_PREFIX = "ghsec_"  # noqa: S105 (a prefix, not a secret)
PUBLIC_PATH = "/api/v1/hooks/git/{id}"
MAX_PAGE = 100


async def create(
    conn: asyncpg.Connection,
    sealer: Sealer,
    actor: Actor,
    organization_id: uuid.UUID,
    description: str,
) -> dict[str, Any]:
    """A new endpoint and, in this answer only, the secret its deliveries are signed with."""
    webhook_id = uuid.uuid4()
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    row = await q.insert_git_webhook(
        conn,
        webhook_id=webhook_id,
        organization_id=organization_id,
        secret_sealed=sealer.seal(secret.encode(), aad=webhook_id.bytes),
        description=description,
    )
    await _audit(conn, actor, organization_id, "CREATE", webhook_id)
    return {**view(row), "secret": secret}


async def listed(conn: asyncpg.Connection, organization_id: uuid.UUID) -> list[dict[str, Any]]:
    return [view(row) for row in await q.git_webhooks(conn, organization_id)]


async def get(
    conn: asyncpg.Connection, organization_id: uuid.UUID, webhook_id: uuid.UUID
) -> dict[str, Any]:
    row = await q.git_webhook(conn, organization_id, webhook_id)
    if row is None:
        raise missing()
    return view(row)


async def delete(
    conn: asyncpg.Connection, actor: Actor, organization_id: uuid.UUID, webhook_id: uuid.UUID
) -> None:
    if not await q.delete_git_webhook(conn, organization_id, webhook_id):
        raise missing()
    await _audit(conn, actor, organization_id, "DELETE", webhook_id)


async def _audit(
    conn: asyncpg.Connection,
    actor: Actor,
    organization_id: uuid.UUID,
    action: str,
    webhook_id: uuid.UUID,
) -> None:
    """Who may make a push deploy is worth an audit line (never the secret)."""
    await audit.record(
        conn,
        producer="scheduler",
        actor=actor,
        organization_id=organization_id,
        action=action,
        target_type="GIT_WEBHOOK",
        target_id=webhook_id,
    )


async def deliveries(
    conn: asyncpg.Connection,
    organization_id: uuid.UUID,
    webhook_id: uuid.UUID,
    *,
    cursor: str | None,
    limit: int,
) -> dict[str, Any]:
    """The endpoint's deliveries, newest first: event, result, what each triggered."""
    if await q.git_webhook(conn, organization_id, webhook_id) is None:
        raise missing()
    limit = max(1, min(limit, MAX_PAGE))
    rows = await q.git_deliveries(
        conn,
        organization_id,
        webhook_id,
        before=decode_cursor(cursor) if cursor else None,
        limit=limit + 1,
    )
    shown = rows[:limit]
    next_cursor = _cursor(shown[-1]) if len(rows) > limit else None
    return {"items": [delivery_view(row) for row in shown], "next_cursor": next_cursor}


def missing() -> Missing:
    return Missing("GIT_WEBHOOK_NOT_FOUND", "No such git webhook.")


def view(hook: q.GitWebhook) -> dict[str, Any]:
    """An endpoint as the API shows it: never its secret."""
    return {
        "id": str(hook.webhook_id),
        "organization_id": str(hook.organization_id),
        "description": hook.description,
        "path": PUBLIC_PATH.format(id=hook.webhook_id),
        "created_at": hook.created_at.isoformat(),
    }


def delivery_view(delivery: q.GitDelivery) -> dict[str, Any]:
    return {
        "id": str(delivery.delivery_row_id),
        "provider": delivery.provider,
        "delivery_id": delivery.delivery_id,
        "event": delivery.event,
        "result": delivery.result,
        "branch": delivery.branch,
        "commit": delivery.commit,
        "triggered": delivery.triggered,
        "received_at": delivery.received_at.isoformat(),
    }


def _cursor(delivery: q.GitDelivery) -> str:
    raw = f"{delivery.received_at.isoformat()}|{delivery.delivery_row_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode()
