"""SQL of the organizations' git credentials (beside ``queries``, which holds the rest): typed
answers, the organization in every ``WHERE`` (row-level security holds it too)."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from slipway_catalog.db.rows import SealedValue
from slipway_catalog.domain.git_credentials import GitCredential


def _credential(row: asyncpg.Record) -> GitCredential:
    sealed: Any = row["secret_sealed"]
    return GitCredential(
        id=row["id"],
        organization_id=row["organization_id"],
        name=row["name"],
        kind=row["kind"],
        host=row["host"],
        secret_sealed=None if sealed is None else bytes(sealed),
        known_hosts=row["known_hosts"],
        version=row["version"],
        created_at=row["created_at"],
        deleted_at=row["deleted_at"],
    )


async def insert(
    conn: asyncpg.Connection,
    *,
    credential_id: uuid.UUID,
    org_id: uuid.UUID,
    name: str,
    kind: str,
    host: str | None,
    sealed: bytes,
    known_hosts: str | None,
) -> GitCredential | None:
    """None: the organization has a credential of that name."""
    row = await conn.fetchrow(
        "INSERT INTO git_credentials"
        " (id, organization_id, name, kind, host, secret_sealed, known_hosts)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING *",
        credential_id,
        org_id,
        name,
        kind,
        host,
        sealed,
        known_hosts,
    )
    return None if row is None else _credential(row)


async def listed(conn: asyncpg.Connection, org_id: uuid.UUID) -> list[GitCredential]:
    found = await conn.fetch(
        "SELECT * FROM git_credentials WHERE organization_id = $1 AND deleted_at IS NULL"
        " ORDER BY lower(name)",
        org_id,
    )
    return [_credential(row) for row in found]


async def one(
    conn: asyncpg.Connection, org_id: uuid.UUID, credential_id: uuid.UUID
) -> GitCredential | None:
    row = await conn.fetchrow(
        "SELECT * FROM git_credentials"
        " WHERE id = $1 AND organization_id = $2 AND deleted_at IS NULL",
        credential_id,
        org_id,
    )
    return None if row is None else _credential(row)


async def delete(
    conn: asyncpg.Connection, org_id: uuid.UUID, credential_id: uuid.UUID
) -> GitCredential | None:
    """The tombstone (the sealed secret erased), or None: no such live credential."""
    row = await conn.fetchrow(
        "UPDATE git_credentials SET deleted_at = now(), secret_sealed = NULL,"
        " known_hosts = NULL, version = nextval('catalog_version')"
        " WHERE id = $1 AND organization_id = $2 AND deleted_at IS NULL RETURNING *",
        credential_id,
        org_id,
    )
    return None if row is None else _credential(row)


async def sealed_secrets(conn: asyncpg.Connection) -> list[SealedValue]:
    """Every live sealed secret, for re-sealing after a key rotation."""
    found = await conn.fetch(
        "SELECT id, secret_sealed FROM git_credentials"
        " WHERE deleted_at IS NULL AND secret_sealed IS NOT NULL"
    )
    return [SealedValue(owner_id=row["id"], sealed=bytes(row["secret_sealed"])) for row in found]


async def set_sealed(conn: asyncpg.Connection, credential_id: uuid.UUID, sealed: bytes) -> None:
    await conn.execute(
        "UPDATE git_credentials SET secret_sealed = $2 WHERE id = $1", credential_id, sealed
    )
