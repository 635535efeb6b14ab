"""SQL of the deployer's copy of the organizations' git credentials (beside ``queries``)."""

from __future__ import annotations

import uuid

import asyncpg

from slipway_contracts.events.catalog import GitCredentialChanged
from slipway_deployer.domain.git_credentials import GitCredential
from slipway_libs import git_credential_projection


async def project(conn: asyncpg.Connection, event: GitCredentialChanged) -> None:
    """Write the state unless a newer version is there (a tombstone stays a tombstone)."""
    await git_credential_projection.project(conn, "catalog_git_credentials", event)


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
