"""SQL of pull requests' previews: the rules' ``auto_preview`` (projected), the blueprints a
pull request is matched against, and the previews' bookkeeping. The public delivery route and
the worker see every row, so each statement names the organization or the row's id."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True)
class Blueprint:
    """An environment with ``auto_preview`` whose applications ``service_ids`` build the pull
    request's repository at its base branch."""

    environment_id: uuid.UUID
    service_ids: tuple[uuid.UUID, ...]
    preview_ttl_hours: int | None = None  # None: the scheduler's default


@dataclass(frozen=True)
class Preview:
    preview_id: uuid.UUID
    organization_id: uuid.UUID
    blueprint_id: uuid.UUID
    pull_request: int
    environment_id: uuid.UUID
    branch: str
    commit: str
    state: str
    expires_at: datetime


_PREVIEW_COLUMNS = (
    "id, organization_id, blueprint_id, pull_request, environment_id, branch, commit, state,"
    " expires_at"
)


def _preview(row: asyncpg.Record) -> Preview:
    return Preview(
        preview_id=row["id"],
        organization_id=row["organization_id"],
        blueprint_id=row["blueprint_id"],
        pull_request=row["pull_request"],
        environment_id=row["environment_id"],
        branch=row["branch"],
        commit=row["commit"],
        state=row["state"],
        expires_at=row["expires_at"],
    )


async def project_preview_rule(
    conn: asyncpg.Connection,
    *,
    environment_id: uuid.UUID,
    organization_id: uuid.UUID,
    auto_preview: bool,
    preview_ttl_hours: int | None,
    version: int,
) -> None:
    """The rule's ``auto_preview`` and preview time to live, unless a newer version is there."""
    await conn.execute(
        "INSERT INTO preview_rules (environment_id, organization_id, auto_preview,"
        " preview_ttl_hours, version) VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (environment_id) DO UPDATE SET auto_preview = EXCLUDED.auto_preview,"
        " preview_ttl_hours = EXCLUDED.preview_ttl_hours, version = EXCLUDED.version"
        " WHERE preview_rules.version < EXCLUDED.version",
        environment_id,
        organization_id,
        auto_preview,
        preview_ttl_hours,
        version,
    )


async def blueprints(
    conn: asyncpg.Connection,
    organization_id: uuid.UUID,
    repository_keys: list[str],
    base_branch: str,
) -> list[Blueprint]:
    """The organization's live environments, not previews themselves, whose rule has
    ``auto_preview`` and which have applications building that repository's base branch."""
    rows = await conn.fetch(
        "SELECT a.environment_id, array_agg(a.service_id ORDER BY a.service_id) AS services,"
        " min(r.preview_ttl_hours) AS ttl FROM applications a"
        " JOIN preview_rules r ON r.environment_id = a.environment_id AND r.auto_preview"
        " JOIN environments e ON e.environment_id = a.environment_id AND e.mode <> 'preview'"
        " WHERE a.organization_id = $1 AND a.repository_key = ANY($2::text[]) AND a.branch = $3"
        " AND NOT a.deleted AND NOT EXISTS"
        " (SELECT 1 FROM deleted_environments d WHERE d.environment_id = a.environment_id)"
        " GROUP BY a.environment_id ORDER BY a.environment_id",
        organization_id,
        repository_keys,
        base_branch,
    )
    return [
        Blueprint(
            environment_id=r["environment_id"],
            service_ids=tuple(r["services"]),
            preview_ttl_hours=r["ttl"],
        )
        for r in rows
    ]


async def open_preview(
    conn: asyncpg.Connection, blueprint_id: uuid.UUID, repository_key: str, pull_request: int
) -> Preview | None:
    """The pull request's open preview of that blueprint, locked until the transaction ends."""
    row = await conn.fetchrow(
        f"SELECT {_PREVIEW_COLUMNS} FROM previews WHERE blueprint_id = $1"
        " AND repository_key = $2 AND pull_request = $3 AND state = 'OPEN' FOR UPDATE",
        blueprint_id,
        repository_key,
        pull_request,
    )
    return None if row is None else _preview(row)


async def insert_preview(
    conn: asyncpg.Connection,
    *,
    organization_id: uuid.UUID,
    blueprint_id: uuid.UUID,
    repository_key: str,
    pull_request: int,
    branch: str,
    commit: str,
    now: datetime,
    expires_at: datetime,
) -> Preview | None:
    """A new open preview with a new environment id; None when one is open already (another
    delivery of the same pull request, committed meanwhile)."""
    row = await conn.fetchrow(
        "INSERT INTO previews (id, organization_id, blueprint_id, repository_key, pull_request,"
        " environment_id, branch, commit, state, expires_at, opened_at, updated_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'OPEN', $9, $10, $10)"
        " ON CONFLICT (blueprint_id, repository_key, pull_request) WHERE state = 'OPEN'"
        f" DO NOTHING RETURNING {_PREVIEW_COLUMNS}",
        uuid.uuid4(),
        organization_id,
        blueprint_id,
        repository_key,
        pull_request,
        uuid.uuid4(),
        branch,
        commit,
        expires_at,
        now,
    )
    return None if row is None else _preview(row)


async def move_head(
    conn: asyncpg.Connection, preview_id: uuid.UUID, *, branch: str, commit: str, now: datetime
) -> None:
    await conn.execute(
        "UPDATE previews SET branch = $2, commit = $3, updated_at = $4 WHERE id = $1",
        preview_id,
        branch,
        commit,
        now,
    )


async def end_preview(
    conn: asyncpg.Connection, preview_id: uuid.UUID, *, state: str, now: datetime
) -> None:
    await conn.execute(
        "UPDATE previews SET state = $2, updated_at = $3 WHERE id = $1 AND state = 'OPEN'",
        preview_id,
        state,
        now,
    )


async def claim_expired(conn: asyncpg.Connection, now: datetime, limit: int) -> list[Preview]:
    """Open previews past their time to live, locked (``SKIP LOCKED``: another scheduler
    process ends the others)."""
    rows = await conn.fetch(
        f"SELECT {_PREVIEW_COLUMNS} FROM previews WHERE state = 'OPEN' AND expires_at <= $1"
        " ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED",
        now,
        limit,
    )
    return [_preview(r) for r in rows]


async def next_expiry(conn: asyncpg.Connection) -> datetime | None:
    expiry: datetime | None = await conn.fetchval(
        "SELECT min(expires_at) FROM previews WHERE state = 'OPEN'"
    )
    return expiry
