"""A service's copy of the organizations' git credentials (``catalog.GitCredentialChanged``).

The deployer (for builds) and the scheduler (for polls) keep the same projection, each in its
own database: the state as the catalog sent it, the secret still sealed with the transport key
and bound to the credential's id, a tombstone keeping neither secret nor host keys. Each row is
written unless a newer version is there, so a redelivered or late event changes nothing.
"""

from __future__ import annotations

import re

import asyncpg

from slipway_contracts.events.catalog import GitCredentialChanged

_TABLE = re.compile(r"[a-z_][a-z0-9_]*")


async def project(conn: asyncpg.Connection, table: str, event: GitCredentialChanged) -> None:
    """Upsert ``event`` into ``table`` (columns: id, organization_id, name, kind, host,
    secret_sealed, known_hosts, deleted, version), in the caller's inbox transaction."""
    if not _TABLE.fullmatch(table):  # a name in code, never input: still, never SQL text
        raise ValueError(f"not a table name: {table!r}")
    await conn.execute(
        f"INSERT INTO {table} (id, organization_id, name, kind, host, secret_sealed,"
        " known_hosts, deleted, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        " ON CONFLICT (id) DO UPDATE SET organization_id = EXCLUDED.organization_id,"
        " name = EXCLUDED.name, kind = EXCLUDED.kind, host = EXCLUDED.host,"
        " secret_sealed = EXCLUDED.secret_sealed, known_hosts = EXCLUDED.known_hosts,"
        " deleted = EXCLUDED.deleted, version = EXCLUDED.version"
        f" WHERE {table}.version < EXCLUDED.version",
        event.credential_id,
        event.organization_id,
        event.name,
        event.kind,
        event.host,
        None if event.deleted else event.secret_sealed,
        None if event.deleted else event.known_hosts,
        event.deleted,
        event.version,
    )
