"""All SQL of the deployer service."""

from __future__ import annotations

import uuid
from typing import Any, TypeAlias

import asyncpg

Row: TypeAlias = asyncpg.Record

# table -> its columns (the first is the key); every one also has ``version``
_PROJECTED: dict[str, tuple[str, ...]] = {
    "catalog_clusters": ("id", "organization_id", "name", "kind", "api_url", "deleted"),
    "catalog_projects": ("id", "organization_id", "name", "deleted"),
    "catalog_environments": (
        "id",
        "organization_id",
        "project_id",
        "name",
        "mode",
        "cluster_id",
        "deleted",
    ),
    "catalog_services": (
        "id",
        "organization_id",
        "project_id",
        "environment_id",
        "name",
        "kind",
        "spec",
        "stage_id",
        "deleted",
    ),
    "catalog_stages": ("id", "organization_id", "environment_id", "name", "position", "deleted"),
    "catalog_rules": ("environment_id", "organization_id", "rule"),
    "catalog_variables": (
        "id",
        "organization_id",
        "project_id",
        "environment_id",
        "scope",
        "parent_id",
        "key",
        "kind",
        "value",
        "value_sealed",
        "is_secret",
        "mount_path",
        "deleted",
    ),
}
_JSON = frozenset({"spec", "rule"})


def _upsert_sql(table: str) -> str:
    columns = (*_PROJECTED[table], "version")
    values = ", ".join(
        f"${i}{'::jsonb' if c in _JSON else ''}" for i, c in enumerate(columns, start=1)
    )
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns[1:])
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({values})"
        f" ON CONFLICT ({columns[0]}) DO UPDATE SET {updates}"
        f" WHERE {table}.version < EXCLUDED.version"
    )


_UPSERTS = {table: _upsert_sql(table) for table in _PROJECTED}


async def project(conn: asyncpg.Connection, table: str, state: dict[str, Any]) -> bool:
    """Write ``state`` unless a newer version is there already; True when written."""
    columns = (*_PROJECTED[table], "version")
    args = [state[c] for c in columns]  # jsonb columns: the pool's codec encodes dicts
    status: str = await conn.execute(_UPSERTS[table], *args)
    return status.endswith(" 1")


async def environment(conn: asyncpg.Connection, env_id: uuid.UUID) -> Row | None:
    return await conn.fetchrow(
        "SELECT * FROM catalog_environments WHERE id = $1 AND NOT deleted", env_id
    )


async def services_of(conn: asyncpg.Connection, env_id: uuid.UUID) -> list[Row]:
    return await conn.fetch(
        "SELECT * FROM catalog_services WHERE environment_id = $1 AND NOT deleted ORDER BY name",
        env_id,
    )


async def stages_of(conn: asyncpg.Connection, env_id: uuid.UUID) -> list[Row]:
    return await conn.fetch(
        "SELECT * FROM catalog_stages WHERE environment_id = $1 AND NOT deleted ORDER BY position",
        env_id,
    )


async def variables_of(conn: asyncpg.Connection, project_id: uuid.UUID) -> list[Row]:
    return await conn.fetch(
        "SELECT * FROM catalog_variables WHERE project_id = $1 AND NOT deleted ORDER BY key",
        project_id,
    )
