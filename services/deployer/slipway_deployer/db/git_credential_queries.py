"""SQL of the deployer's copy of the organizations' git credentials (beside ``queries``)."""

from __future__ import annotations

import uuid

import asyncpg

from slipway_deployer.domain.git_credentials import GitCredential


async def project(
    conn: asyncpg.Connection,
    *,
    credential_id: uuid.UUID,
    org_id: uuid.UUID,
    name: str,
    kind: str,
    host: str | None,
    secret_sealed: str | None,
    known_hosts: str | None,
    deleted: bool,
    version: int,
) -> None:
    """Write the state unless a newer version is there (a tombstone stays a tombstone)."""
    await conn.execute(
        "INSERT INTO catalog_git_credentials (id, organization_id, name, kind, host,"
        " secret_sealed, known_hosts, deleted, version)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        " ON CONFLICT (id) DO UPDATE SET organization_id = EXCLUDED.organization_id,"
        " name = EXCLUDED.name, kind = EXCLUDED.kind, host = EXCLUDED.host,"
        " secret_sealed = EXCLUDED.secret_sealed, known_hosts = EXCLUDED.known_hosts,"
        " deleted = EXCLUDED.deleted, version = EXCLUDED.version"
        " WHERE catalog_git_credentials.version < EXCLUDED.version",
        credential_id,
        org_id,
        name,
        kind,
        host,
        secret_sealed,
        known_hosts,
        deleted,
        version,
    )


async def of_organization(conn: asyncpg.Connection, org_id: uuid.UUID) -> list[GitCredential]:
    rows = await conn.fetch(
        "SELECT id, organization_id, name, kind, host, secret_sealed, known_hosts"
        " FROM catalog_git_credentials WHERE organization_id = $1 AND NOT deleted",
        org_id,
    )
    return [
        GitCredential(
            id=row["id"],
            organization_id=row["organization_id"],
            name=row["name"],
            kind=row["kind"],
            host=row["host"],
            secret_sealed=row["secret_sealed"],
            known_hosts=row["known_hosts"],
        )
        for row in rows
    ]
