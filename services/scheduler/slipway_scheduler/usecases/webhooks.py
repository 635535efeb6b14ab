"""Managing an organization's outgoing webhooks: create (the secret shown once), list, read,
delete. The secret is sealed at rest with the scheduler's key, bound to the webhook's id."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from slipway_libs.crypto import Sealer
from slipway_libs.egress import (
    EgressPolicy,
    TargetNotAllowed,
    TargetUnresolved,
    checked_addresses,
)
from slipway_libs.errors import InvalidInput, Missing
from slipway_scheduler.db import webhook_queries as q
from slipway_scheduler.domain import webhooks as domain

# a name is resolved at creation only for an early, clear refusal: a slow resolver accepts it
# (every delivery resolves and checks it again, which is the check that protects)
_RESOLVE_AT_SAVE_S = 2.0
SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)


@dataclass(frozen=True)
class WebhookDeps:
    sealer: Sealer
    egress: EgressPolicy


@dataclass(frozen=True)
class NewWebhook:
    url: str
    events: list[str]
    project_pattern: str | None = None
    environment_modes: list[str] | None = None
    format: str = "json"
    description: str = ""


async def create(
    conn: asyncpg.Connection,
    deps: WebhookDeps,
    organization_id: uuid.UUID,
    new: NewWebhook,
) -> dict[str, Any]:
    """A new webhook and, in this answer only, its signing secret."""
    target = domain.target(new.url)
    events = domain.events(new.events)
    modes = domain.environment_modes(new.environment_modes)
    pattern = domain.project_pattern(new.project_pattern)
    try:
        kind = domain.Format(new.format)
    except ValueError:
        raise InvalidInput(
            "INVALID_WEBHOOK_FORMAT", "The format must be json or slack.", field="format"
        ) from None
    await _ensure_allowed(deps.egress, target)
    webhook_id = uuid.uuid4()
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    row = await q.insert_webhook(
        conn,
        webhook_id=webhook_id,
        organization_id=organization_id,
        url=target.url,
        secret_sealed=deps.sealer.seal(secret.encode(), aad=webhook_id.bytes),
        events=events,
        project_pattern=pattern,
        environment_modes=modes,
        format=kind.value,
        description=new.description,
    )
    return {**view(row), "secret": secret}


async def _ensure_allowed(policy: EgressPolicy, target: domain.Target) -> None:
    """422 ``TARGET_NOT_ALLOWED`` when the target is, or now resolves to, an address the
    platform does not connect to (loopback, private, link-local, metadata...) and the platform's
    allow-list does not name it. A name that does not resolve now is accepted."""
    try:
        async with asyncio.timeout(_RESOLVE_AT_SAVE_S):
            await checked_addresses(target.host, target.port, policy=policy)
    except TargetNotAllowed as refused:
        raise InvalidInput("TARGET_NOT_ALLOWED", refused.message, field="url") from None
    except (TargetUnresolved, TimeoutError):
        pass


async def listed(conn: asyncpg.Connection, organization_id: uuid.UUID) -> list[dict[str, Any]]:
    return [view(row) for row in await q.webhooks(conn, organization_id)]


async def get(
    conn: asyncpg.Connection, organization_id: uuid.UUID, webhook_id: uuid.UUID
) -> dict[str, Any]:
    row = await q.webhook(conn, organization_id, webhook_id)
    if row is None:
        raise _missing()
    return view(row)


async def delete(
    conn: asyncpg.Connection, organization_id: uuid.UUID, webhook_id: uuid.UUID
) -> None:
    if not await q.delete_webhook(conn, organization_id, webhook_id):
        raise _missing()


def _missing() -> Missing:
    return Missing("WEBHOOK_NOT_FOUND", "No such webhook.")


def view(hook: q.Webhook) -> dict[str, Any]:
    """A webhook as the API shows it: never its secret."""
    return {
        "id": str(hook.webhook_id),
        "organization_id": str(hook.organization_id),
        "url": hook.url,
        "events": list(hook.events),
        "project_pattern": hook.project_pattern,
        "environment_modes": list(hook.environment_modes),
        "format": hook.format,
        "description": hook.description,
        "created_at": hook.created_at.isoformat(),
    }
