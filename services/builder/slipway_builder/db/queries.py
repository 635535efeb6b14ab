"""All SQL of the builder service."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

from slipway_builder.domain.builds import Build

_CLAIM_LOCK = 727_301  # serializes claims, so the parallel cap holds across worker processes


def _build(row: asyncpg.Record) -> Build:
    """The one mapping of a ``builds`` row; nothing outside this module reads a row."""
    return Build(
        id=row["id"],
        organization_id=row["organization_id"],
        environment_id=row["environment_id"],
        service_id=row["service_id"],
        deployment_id=row["deployment_id"],
        source=row["source"],
        build_args=row["build_args"],
        image_repository=row["image_repository"],
        git_token_sealed=row["git_token_sealed"],
        git_ssh_key_sealed=row["git_ssh_key_sealed"],
        git_known_hosts=row["git_known_hosts"],
        status=row["status"],
        worker_pid=row["worker_pid"],
        pgid=row["pgid"],
    )


def _maybe_build(row: asyncpg.Record | None) -> Build | None:
    return None if row is None else _build(row)


async def insert_build(
    conn: asyncpg.Connection,
    *,
    build_id: uuid.UUID,
    org_id: uuid.UUID,
    env_id: uuid.UUID | None,
    service_id: uuid.UUID,
    deployment_id: uuid.UUID | None,
    source: dict[str, Any],
    build_args: dict[str, str],
    image_repository: str,
    git_token_sealed: str | None,
    requested_at: datetime,
    git_ssh_key_sealed: str | None = None,
    git_known_hosts: str | None = None,
) -> Build | None:
    """None when this build was requested already."""
    row = await conn.fetchrow(
        "INSERT INTO builds (id, organization_id, environment_id, service_id, deployment_id,"
        " source, build_args, image_repository, git_token_sealed, requested_at,"
        " git_ssh_key_sealed, git_known_hosts)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (id) DO NOTHING"
        " RETURNING *",
        build_id,
        org_id,
        env_id,
        service_id,
        deployment_id,
        source,
        build_args,
        image_repository,
        git_token_sealed,
        requested_at,
        git_ssh_key_sealed,
        git_known_hosts,
    )
    return _maybe_build(row)


async def queued_before(conn: asyncpg.Connection, build_id: uuid.UUID) -> int:
    n: int = await conn.fetchval(
        "SELECT count(*) FROM builds b, (SELECT requested_at, id FROM builds WHERE id = $1) me"
        " WHERE b.status = 'QUEUED' AND (b.requested_at, b.id) < (me.requested_at, me.id)",
        build_id,
    )
    return n


async def build(conn: asyncpg.Connection, build_id: uuid.UUID) -> Build | None:
    return _maybe_build(await conn.fetchrow("SELECT * FROM builds WHERE id = $1", build_id))


async def claim_next(conn: asyncpg.Connection, *, cap: int, host: str, pid: int) -> Build | None:
    """The first requested queued build, now RUNNING for this worker, unless ``cap`` run."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", _CLAIM_LOCK)
    running: int = await conn.fetchval("SELECT count(*) FROM builds WHERE status = 'RUNNING'")
    if running >= cap:
        return None
    row = await conn.fetchrow(
        "UPDATE builds SET status = 'RUNNING', started_at = now(), worker_host = $1,"
        " worker_pid = $2 WHERE id = (SELECT id FROM builds WHERE status = 'QUEUED'"
        " ORDER BY requested_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING *",
        host,
        pid,
    )
    return _maybe_build(row)


async def set_pgid(conn: asyncpg.Connection, build_id: uuid.UUID, pgid: int | None) -> None:
    await conn.execute("UPDATE builds SET pgid = $2 WHERE id = $1", build_id, pgid)


async def set_commit(conn: asyncpg.Connection, build_id: uuid.UUID, commit: str) -> None:
    await conn.execute("UPDATE builds SET commit = $2 WHERE id = $1", build_id, commit)


async def finish(
    conn: asyncpg.Connection,
    build_id: uuid.UUID,
    *,
    status: str,
    image: str | None = None,
    digest: str | None = None,
    skipped: bool | None = None,
    reason: str | None = None,
    message: str | None = None,
) -> Build | None:
    """Only a build not yet final can end (a late cancel or a duplicate end changes nothing)."""
    row = await conn.fetchrow(
        "UPDATE builds SET status = $2, image = $3, digest = $4, skipped = $5, reason = $6,"
        " message = $7, finished_at = now(), pgid = NULL"
        " WHERE id = $1 AND status IN ('QUEUED', 'RUNNING') RETURNING *",
        build_id,
        status,
        image,
        digest,
        skipped,
        reason,
        message,
    )
    return _maybe_build(row)


async def request_cancel(conn: asyncpg.Connection, build_id: uuid.UUID) -> Build | None:
    row = await conn.fetchrow(
        "UPDATE builds SET cancel_requested = true WHERE id = $1"
        " AND status IN ('QUEUED', 'RUNNING') RETURNING *",
        build_id,
    )
    return _maybe_build(row)


async def cancel_requested(conn: asyncpg.Connection, build_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    rows = await conn.fetch(
        "SELECT id FROM builds WHERE id = ANY($1::uuid[]) AND cancel_requested", build_ids
    )
    return [r["id"] for r in rows]


async def any_running_on(conn: asyncpg.Connection, host: str) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM builds WHERE status = 'RUNNING' AND worker_host = $1)",
            host,
        )
    )


async def running_on(conn: asyncpg.Connection, host: str) -> list[Build]:
    rows = await conn.fetch(
        "SELECT * FROM builds WHERE status = 'RUNNING' AND worker_host = $1 FOR UPDATE", host
    )
    return [_build(r) for r in rows]
