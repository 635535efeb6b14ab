"""SQL of the incoming git webhooks and of the applications a push is matched against
(row-level security scopes the management routes to the acting organization; the public
delivery route and the consumers see every row, so each statement names the organization)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg


@dataclass(frozen=True)
class GitWebhook:
    """An endpoint as its queries answer it: never its sealed secret."""

    webhook_id: uuid.UUID
    organization_id: uuid.UUID
    description: str
    created_at: datetime


@dataclass(frozen=True)
class SealedGitWebhook:
    """An endpoint with its sealed secret: only for checking a delivery's signature."""

    webhook_id: uuid.UUID
    organization_id: uuid.UUID
    secret_sealed: bytes


@dataclass(frozen=True)
class Application:
    """An application a push to its repository and branch deploys."""

    service_id: uuid.UUID
    environment_id: uuid.UUID
    path_filters: tuple[str, ...] = ()
    auto_deploy: bool = True


@dataclass(frozen=True)
class GitDelivery:
    delivery_row_id: uuid.UUID
    provider: str
    delivery_id: str
    event: str
    result: str
    branch: str | None
    commit: str | None
    triggered: list[dict[str, Any]]
    received_at: datetime


_HOOK_COLUMNS = "id, organization_id, description, created_at"
_DELIVERY_COLUMNS = (
    "id, provider, delivery_id, event, result, branch, commit, triggered, received_at"
)


def _hook(row: asyncpg.Record) -> GitWebhook:
    return GitWebhook(
        webhook_id=row["id"],
        organization_id=row["organization_id"],
        description=row["description"],
        created_at=row["created_at"],
    )


def _delivery(row: asyncpg.Record) -> GitDelivery:
    return GitDelivery(
        delivery_row_id=row["id"],
        provider=row["provider"],
        delivery_id=row["delivery_id"],
        event=row["event"],
        result=row["result"],
        branch=row["branch"],
        commit=row["commit"],
        triggered=list(row["triggered"]),  # jsonb, decoded by the pool's codec
        received_at=row["received_at"],
    )


# --- endpoints ---------------------------------------------------------------------------------


async def insert_git_webhook(
    conn: asyncpg.Connection,
    *,
    webhook_id: uuid.UUID,
    organization_id: uuid.UUID,
    secret_sealed: bytes,
    description: str,
) -> GitWebhook:
    row = await conn.fetchrow(
        "INSERT INTO git_webhooks (id, organization_id, secret_sealed, description)"
        f" VALUES ($1, $2, $3, $4) RETURNING {_HOOK_COLUMNS}",
        webhook_id,
        organization_id,
        secret_sealed,
        description,
    )
    return _hook(row)


async def git_webhooks(conn: asyncpg.Connection, organization_id: uuid.UUID) -> list[GitWebhook]:
    rows = await conn.fetch(
        f"SELECT {_HOOK_COLUMNS} FROM git_webhooks WHERE organization_id = $1"
        " ORDER BY created_at, id",
        organization_id,
    )
    return [_hook(r) for r in rows]


async def git_webhook(
    conn: asyncpg.Connection, organization_id: uuid.UUID, webhook_id: uuid.UUID
) -> GitWebhook | None:
    row = await conn.fetchrow(
        f"SELECT {_HOOK_COLUMNS} FROM git_webhooks WHERE organization_id = $1 AND id = $2",
        organization_id,
        webhook_id,
    )
    return None if row is None else _hook(row)


async def sealed_git_webhook(
    conn: asyncpg.Connection, webhook_id: uuid.UUID
) -> SealedGitWebhook | None:
    """The endpoint a public delivery names, whichever organization's it is."""
    row = await conn.fetchrow(
        "SELECT id, organization_id, secret_sealed FROM git_webhooks WHERE id = $1", webhook_id
    )
    if row is None:
        return None
    return SealedGitWebhook(
        webhook_id=row["id"],
        organization_id=row["organization_id"],
        secret_sealed=bytes(row["secret_sealed"]),
    )


async def delete_git_webhook(
    conn: asyncpg.Connection, organization_id: uuid.UUID, webhook_id: uuid.UUID
) -> bool:
    deleted = await conn.fetchval(
        "DELETE FROM git_webhooks WHERE organization_id = $1 AND id = $2 RETURNING id",
        organization_id,
        webhook_id,
    )
    return deleted is not None


# --- deliveries --------------------------------------------------------------------------------


async def insert_git_delivery(
    conn: asyncpg.Connection,
    *,
    row_id: uuid.UUID,
    hook: SealedGitWebhook,
    provider: str,
    delivery_id: str,
    event: str,
    received_at: datetime,
) -> bool:
    """Record a delivery; False when this endpoint already received that delivery id."""
    status: str = await conn.execute(
        "INSERT INTO git_deliveries (id, git_webhook_id, organization_id, provider, delivery_id,"
        " event, result, received_at) VALUES ($1, $2, $3, $4, $5, $6, 'received', $7)"
        " ON CONFLICT (git_webhook_id, delivery_id) DO NOTHING",
        row_id,
        hook.webhook_id,
        hook.organization_id,
        provider,
        delivery_id,
        event,
        received_at,
    )
    return status.endswith(" 1")


async def settle_git_delivery(
    conn: asyncpg.Connection,
    row_id: uuid.UUID,
    *,
    result: str,
    branch: str | None,
    commit: str | None,
    triggered: list[dict[str, Any]],
) -> GitDelivery:
    row = await conn.fetchrow(
        "UPDATE git_deliveries SET result = $2, branch = $3, commit = $4, triggered = $5"
        f" WHERE id = $1 RETURNING {_DELIVERY_COLUMNS}",
        row_id,
        result,
        branch,
        commit,
        triggered,
    )
    return _delivery(row)


async def git_delivery_by_delivery_id(
    conn: asyncpg.Connection, webhook_id: uuid.UUID, delivery_id: str
) -> GitDelivery | None:
    row = await conn.fetchrow(
        f"SELECT {_DELIVERY_COLUMNS} FROM git_deliveries"
        " WHERE git_webhook_id = $1 AND delivery_id = $2",
        webhook_id,
        delivery_id,
    )
    return None if row is None else _delivery(row)


async def git_deliveries(
    conn: asyncpg.Connection,
    organization_id: uuid.UUID,
    webhook_id: uuid.UUID,
    *,
    before: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[GitDelivery]:
    """The endpoint's deliveries, newest first, after the cursor ``before``."""
    rows = await conn.fetch(
        f"SELECT {_DELIVERY_COLUMNS} FROM git_deliveries"
        " WHERE organization_id = $1 AND git_webhook_id = $2"
        " AND ($3::timestamptz IS NULL OR (received_at, id) < ($3, $4))"
        " ORDER BY received_at DESC, id DESC LIMIT $5",
        organization_id,
        webhook_id,
        before[0] if before else None,
        before[1] if before else None,
        limit,
    )
    return [_delivery(r) for r in rows]


# --- the applications a push deploys -----------------------------------------------------------


async def project_application(conn: asyncpg.Connection, state: dict[str, Any]) -> bool:
    """Write the application's state unless a newer version is there (a tombstone stays one);
    True when written."""
    status: str = await conn.execute(
        "INSERT INTO applications (service_id, organization_id, environment_id, repository_url,"
        " repository_key, branch, auto_deploy, deleted, version, path_filters)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        " ON CONFLICT (service_id) DO UPDATE SET environment_id = EXCLUDED.environment_id,"
        " repository_url = EXCLUDED.repository_url, repository_key = EXCLUDED.repository_key,"
        " branch = EXCLUDED.branch, auto_deploy = EXCLUDED.auto_deploy,"
        " deleted = EXCLUDED.deleted, version = EXCLUDED.version,"
        " path_filters = EXCLUDED.path_filters"
        " WHERE applications.version < EXCLUDED.version AND NOT applications.deleted",
        state["service_id"],
        state["organization_id"],
        state["environment_id"],
        state["repository_url"],
        state["repository_key"],
        state["branch"],
        state["auto_deploy"],
        state["deleted"],
        state["version"],
        list(state.get("path_filters", ())),
    )
    return status.endswith(" 1")


async def pushed_applications(
    conn: asyncpg.Connection,
    organization_id: uuid.UUID,
    repository_keys: list[str],
    branch: str,
) -> list[Application]:
    """The organization's live applications that build that repository's branch, in
    environments the catalog has not deleted (``auto_deploy`` on or off: a push makes each
    one's environment out of date; only those with it on are deployed)."""
    rows = await conn.fetch(
        "SELECT a.service_id, a.environment_id, a.path_filters, a.auto_deploy FROM applications a"
        " WHERE a.organization_id = $1 AND a.repository_key = ANY($2::text[]) AND a.branch = $3"
        " AND NOT a.deleted AND NOT EXISTS"
        " (SELECT 1 FROM deleted_environments d WHERE d.environment_id = a.environment_id)"
        " ORDER BY a.environment_id, a.service_id",
        organization_id,
        repository_keys,
        branch,
    )
    return [
        Application(
            service_id=r["service_id"],
            environment_id=r["environment_id"],
            path_filters=tuple(r["path_filters"]),
            auto_deploy=r["auto_deploy"],
        )
        for r in rows
    ]
