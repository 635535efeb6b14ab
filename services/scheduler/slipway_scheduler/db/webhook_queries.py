"""SQL of the outgoing webhooks (row-level security scopes every statement to the acting
organization; the platform's own work sees every row)."""

from __future__ import annotations

import uuid

import asyncpg

_COLUMNS = (
    "id, organization_id, url, events, project_pattern, environment_modes, format, description,"
    " created_at"
)


async def insert_webhook(
    conn: asyncpg.Connection,
    *,
    webhook_id: uuid.UUID,
    organization_id: uuid.UUID,
    url: str,
    secret_sealed: bytes,
    events: list[str],
    project_pattern: str | None,
    environment_modes: list[str],
    format: str,
    description: str,
) -> asyncpg.Record:
    row: asyncpg.Record = await conn.fetchrow(
        f"""
        INSERT INTO webhooks (id, organization_id, url, secret_sealed, events, project_pattern,
                              environment_modes, format, description)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
        RETURNING {_COLUMNS}
        """,
        webhook_id,
        organization_id,
        url,
        secret_sealed,
        events,
        project_pattern,
        environment_modes,
        format,
        description,
    )
    return row


async def webhooks(conn: asyncpg.Connection, organization_id: uuid.UUID) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        f"SELECT {_COLUMNS} FROM webhooks WHERE organization_id = $1 ORDER BY created_at, id",
        organization_id,
    )
    return rows


async def webhook(
    conn: asyncpg.Connection, organization_id: uuid.UUID, webhook_id: uuid.UUID
) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM webhooks WHERE organization_id = $1 AND id = $2",
        organization_id,
        webhook_id,
    )
    return row


async def delete_webhook(
    conn: asyncpg.Connection, organization_id: uuid.UUID, webhook_id: uuid.UUID
) -> bool:
    deleted = await conn.fetchval(
        "DELETE FROM webhooks WHERE organization_id = $1 AND id = $2 RETURNING id",
        organization_id,
        webhook_id,
    )
    return deleted is not None
