"""SQL of polling remotes for new commits, and of the scheduler's copy of the organizations'
git credentials (beside ``git_queries``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from slipway_contracts.events.catalog import GitCredentialChanged
from slipway_libs import git_credential_projection
from slipway_scheduler.domain.git_polling import GitCredential


@dataclass(frozen=True)
class PolledBranch:
    organization_id: uuid.UUID
    repository_key: str
    branch: str
    repository_url: str
    last_commit: str | None
    failures: int


async def add_deployed_branches(conn: asyncpg.Connection, first_poll_at: datetime) -> int:
    """A row for each branch a deployed, live application builds that has none yet."""
    status = await conn.execute(
        "INSERT INTO git_polls (organization_id, repository_key, branch, repository_url,"
        " next_poll_at)"
        " SELECT DISTINCT ON (a.organization_id, a.repository_key, a.branch)"
        " a.organization_id, a.repository_key, a.branch, a.repository_url, $1"
        " FROM applications a JOIN deployed_services d"
        " ON d.service_id = a.service_id AND d.deployed"
        " WHERE NOT a.deleted AND NOT EXISTS"
        " (SELECT 1 FROM deleted_environments e WHERE e.environment_id = a.environment_id)"
        " AND NOT EXISTS (SELECT 1 FROM git_polls p"
        " WHERE p.organization_id = a.organization_id AND p.repository_key = a.repository_key"
        " AND p.branch = a.branch)"
        " ORDER BY a.organization_id, a.repository_key, a.branch, a.service_id"
        " ON CONFLICT DO NOTHING",
        first_poll_at,
    )
    return int(status.split()[-1])


async def remove_forgotten_branches(conn: asyncpg.Connection) -> None:
    """Forget branches no live application builds any more (one being redeployed, stopped for
    the night, keeps its row: its head seen stays known)."""
    await conn.execute(
        "DELETE FROM git_polls p WHERE NOT EXISTS (SELECT 1 FROM applications a"
        " WHERE NOT a.deleted AND a.organization_id = p.organization_id"
        " AND a.repository_key = p.repository_key AND a.branch = p.branch)"
    )


async def claim_due(
    conn: asyncpg.Connection, now: datetime, leased_until: datetime, limit: int
) -> list[PolledBranch]:
    """The due branches, pushed out to ``leased_until`` so that no other process polls them
    meanwhile (rows another transaction holds are skipped)."""
    rows = await conn.fetch(
        "UPDATE git_polls p SET next_poll_at = $2 FROM (SELECT organization_id, repository_key,"
        " branch FROM git_polls WHERE next_poll_at <= $1 ORDER BY next_poll_at LIMIT $3"
        " FOR UPDATE SKIP LOCKED) due"
        " WHERE (p.organization_id, p.repository_key, p.branch)"
        " = (due.organization_id, due.repository_key, due.branch)"
        " RETURNING p.organization_id, p.repository_key, p.branch, p.repository_url,"
        " p.last_commit, p.failures",
        now,
        leased_until,
        limit,
    )
    return [PolledBranch(**dict(row)) for row in rows]


async def next_due(conn: asyncpg.Connection) -> datetime | None:
    due: datetime | None = await conn.fetchval("SELECT min(next_poll_at) FROM git_polls")
    return due


async def record_head(
    conn: asyncpg.Connection,
    branch: PolledBranch,
    *,
    head: str,
    polled_at: datetime,
    next_poll_at: datetime,
) -> bool:
    """Store the head unless a push moved the row meanwhile (False: nothing written)."""
    status = await conn.execute(
        "UPDATE git_polls SET last_commit = $4, polled_at = $5, next_poll_at = $6, failures = 0"
        " WHERE organization_id = $1 AND repository_key = $2 AND branch = $3"
        " AND last_commit IS NOT DISTINCT FROM $7",
        branch.organization_id,
        branch.repository_key,
        branch.branch,
        head,
        polled_at,
        next_poll_at,
        branch.last_commit,
    )
    return status.endswith(" 1")


async def record_failure(
    conn: asyncpg.Connection,
    branch: PolledBranch,
    *,
    error: str,
    polled_at: datetime,
    next_poll_at: datetime,
) -> None:
    await conn.execute(
        "UPDATE git_polls SET failures = failures + 1, last_error = $4, last_error_at = $5,"
        " polled_at = $5, next_poll_at = $6"
        " WHERE organization_id = $1 AND repository_key = $2 AND branch = $3",
        branch.organization_id,
        branch.repository_key,
        branch.branch,
        error,
        polled_at,
        next_poll_at,
    )


async def record_push(
    conn: asyncpg.Connection,
    organization_id: uuid.UUID,
    repository_keys: list[str],
    branch: str,
    *,
    commit: str,
    pushed_at: datetime,
    next_poll_at: datetime,
) -> None:
    """A webhook's push: its commit is the head seen, and polling waits."""
    await conn.execute(
        "UPDATE git_polls SET last_commit = $4, pushed_at = $5,"
        " next_poll_at = GREATEST(next_poll_at, $6)"
        " WHERE organization_id = $1 AND repository_key = ANY($2::text[]) AND branch = $3",
        organization_id,
        repository_keys,
        branch,
        commit,
        pushed_at,
        next_poll_at,
    )


@dataclass(frozen=True)
class PollState:
    repository_key: str
    branch: str
    last_commit: str | None
    polled_at: datetime | None
    failures: int
    last_error: str | None
    last_error_at: datetime | None


async def poll_states(conn: asyncpg.Connection, organization_id: uuid.UUID) -> list[PollState]:
    rows = await conn.fetch(
        "SELECT repository_key, branch, last_commit, polled_at, failures, last_error,"
        " last_error_at FROM git_polls WHERE organization_id = $1"
        " ORDER BY repository_key, branch",
        organization_id,
    )
    return [PollState(**dict(row)) for row in rows]


async def project_credential(conn: asyncpg.Connection, event: GitCredentialChanged) -> None:
    """Write the state unless a newer version is there (a tombstone stays a tombstone)."""
    await git_credential_projection.project(conn, "git_credentials", event)


async def credentials(conn: asyncpg.Connection, organization_id: uuid.UUID) -> list[GitCredential]:
    rows = await conn.fetch(
        "SELECT id, name, kind, host, secret_sealed, known_hosts FROM git_credentials"
        " WHERE organization_id = $1 AND NOT deleted AND secret_sealed IS NOT NULL",
        organization_id,
    )
    return [GitCredential(**dict(row)) for row in rows]
