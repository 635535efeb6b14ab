"""SQL of the outgoing webhooks (row-level security scopes every statement to the acting
organization; the platform's own work sees every row)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True)
class Webhook:
    """A webhook as its queries answer it: never its sealed secret."""

    webhook_id: uuid.UUID
    organization_id: uuid.UUID
    url: str
    events: list[str]
    project_pattern: str | None
    environment_modes: list[str]
    format: str
    description: str
    created_at: datetime


def _webhook(row: asyncpg.Record) -> Webhook:
    return Webhook(
        webhook_id=row["id"],
        organization_id=row["organization_id"],
        url=row["url"],
        events=list(row["events"]),
        project_pattern=row["project_pattern"],
        environment_modes=list(row["environment_modes"]),
        format=row["format"],
        description=row["description"],
        created_at=row["created_at"],
    )


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
) -> Webhook:
    row = await conn.fetchrow(
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
    return _webhook(row)


async def webhooks(conn: asyncpg.Connection, organization_id: uuid.UUID) -> list[Webhook]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM webhooks WHERE organization_id = $1 ORDER BY created_at, id",
        organization_id,
    )
    return [_webhook(r) for r in rows]


async def webhook(
    conn: asyncpg.Connection, organization_id: uuid.UUID, webhook_id: uuid.UUID
) -> Webhook | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM webhooks WHERE organization_id = $1 AND id = $2",
        organization_id,
        webhook_id,
    )
    return None if row is None else _webhook(row)


async def delete_webhook(
    conn: asyncpg.Connection, organization_id: uuid.UUID, webhook_id: uuid.UUID
) -> bool:
    deleted = await conn.fetchval(
        "DELETE FROM webhooks WHERE organization_id = $1 AND id = $2 RETURNING id",
        organization_id,
        webhook_id,
    )
    return deleted is not None
