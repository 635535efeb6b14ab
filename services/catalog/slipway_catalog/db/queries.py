"""All SQL of the catalog service: small functions, connection first, ``$n`` parameters.

Every organization-owned read filters on ``organization_id`` or reaches it through its parent;
every change takes a new ``catalog_version`` (the events' "newer wins" order).
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from slipway_catalog.db import rows
from slipway_catalog.db.rows import DatabaseConnection, SealedValue
from slipway_catalog.domain import clashes
from slipway_catalog.domain.clusters import Cluster
from slipway_catalog.domain.environments import Environment
from slipway_catalog.domain.projects import Project
from slipway_catalog.domain.rules import SavedRule
from slipway_catalog.domain.services import Service
from slipway_catalog.domain.stages import Stage
from slipway_catalog.domain.variables import Variable
from slipway_libs import db

_NEXT = "nextval('catalog_version')"

# --- project revisions (the causal token of read-your-writes across services)


async def next_revision(conn: asyncpg.Connection, project_id: uuid.UUID, org_id: uuid.UUID) -> int:
    """The project's next revision; the row stays locked until the transaction ends, so
    revisions commit in the order they were taken (the order of the project's events)."""
    revision: int = await conn.fetchval(
        "INSERT INTO project_revisions (project_id, organization_id, revision) VALUES ($1, $2, 1)"
        " ON CONFLICT (project_id) DO UPDATE SET revision = project_revisions.revision + 1"
        " RETURNING revision",
        project_id,
        org_id,
    )
    return revision


# --- organizations (a projection of identity's) and clusters


async def upsert_organization(conn: asyncpg.Connection, org_id: uuid.UUID, name: str) -> bool:
    """True when the organization is new here."""
    row = await conn.fetchrow(
        "INSERT INTO organizations (id, name) VALUES ($1, $2)"
        " ON CONFLICT (id) DO UPDATE SET name = $2 RETURNING (xmax = 0) AS inserted",
        org_id,
        name,
    )
    return bool(row["inserted"])


async def ensure_organization(conn: asyncpg.Connection, org_id: uuid.UUID) -> bool:
    """True when the organization was not known yet (recorded now, name to follow)."""
    row = await conn.fetchrow(
        "INSERT INTO organizations (id, name) VALUES ($1, '') ON CONFLICT DO NOTHING RETURNING id",
        org_id,
    )
    return row is not None


async def delete_organization(conn: asyncpg.Connection, org_id: uuid.UUID) -> None:
    await conn.execute("UPDATE organizations SET deleted_at = now() WHERE id = $1", org_id)


async def organization_exists(conn: asyncpg.Connection, org_id: uuid.UUID) -> bool:
    """True when the organization is known here and not deleted."""
    found: bool = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM organizations WHERE id = $1 AND deleted_at IS NULL)", org_id
    )
    return found


async def first_organization(conn: asyncpg.Connection, org_id: uuid.UUID) -> bool:
    """True when no other organization was ever recorded here (deleted ones count). A lock held
    to the end of the transaction orders two first organizations created at once: the second
    waits, then sees the first's committed row."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('catalog.first_organization'))")
    alone: bool = await conn.fetchval(
        "SELECT NOT EXISTS (SELECT 1 FROM organizations WHERE id <> $1)", org_id
    )
    return alone


async def insert_cluster(
    conn: asyncpg.Connection,
    *,
    cluster_id: uuid.UUID,
    org_id: uuid.UUID,
    name: str,
    kind: str,
    api_url: str | None,
    sealed: bytes | None,
) -> Cluster | None:
    row = await conn.fetchrow(
        "INSERT INTO clusters (id, organization_id, name, kind, api_url, credentials_sealed)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING *",
        cluster_id,
        org_id,
        name,
        kind,
        api_url,
        sealed,
    )
    return None if row is None else rows.cluster(row)


async def clusters(conn: asyncpg.Connection, org_id: uuid.UUID) -> list[Cluster]:
    found = await conn.fetch(
        "SELECT * FROM clusters WHERE organization_id = $1 AND deleted_at IS NULL"
        " ORDER BY created_at",
        org_id,
    )
    return [rows.cluster(row) for row in found]


async def cluster(conn: asyncpg.Connection, cluster_id: uuid.UUID) -> Cluster | None:
    row = await conn.fetchrow(
        "SELECT * FROM clusters WHERE id = $1 AND deleted_at IS NULL", cluster_id
    )
    return None if row is None else rows.cluster(row)


async def update_cluster(
    conn: asyncpg.Connection,
    cluster_id: uuid.UUID,
    *,
    name: str,
    api_url: str | None,
    sealed: bytes | None,
) -> Cluster:
    row = await db.fetchrow_unique(
        conn,
        clashes.cluster_name_taken,
        f"UPDATE clusters SET name = $2, api_url = $3, credentials_sealed = $4,"
        f" updated_at = now(), version = {_NEXT} WHERE id = $1 RETURNING *",
        cluster_id,
        name,
        api_url,
        sealed,
    )
    return rows.cluster(row)


async def delete_cluster(conn: asyncpg.Connection, cluster_id: uuid.UUID) -> Cluster:
    row = await conn.fetchrow(
        f"UPDATE clusters SET deleted_at = now(), version = {_NEXT} WHERE id = $1 RETURNING *",
        cluster_id,
    )
    return rows.cluster(row)


async def environments_on_cluster(conn: asyncpg.Connection, cluster_id: uuid.UUID) -> int:
    n: int = await conn.fetchval(
        "SELECT count(*) FROM environments WHERE cluster_id = $1 AND deleted_at IS NULL", cluster_id
    )
    return n


# --- projects


async def insert_project(
    conn: asyncpg.Connection,
    *,
    project_id: uuid.UUID,
    org_id: uuid.UUID,
    name: str,
    description: str,
) -> Project:
    row = await db.fetchrow_unique(
        conn,
        clashes.project_name_taken,
        "INSERT INTO projects (id, organization_id, name, description) VALUES ($1, $2, $3, $4)"
        " RETURNING *",
        project_id,
        org_id,
        name,
        description,
    )
    return rows.project(row)


async def projects(conn: asyncpg.Connection, org_id: uuid.UUID) -> list[Project]:
    found = await conn.fetch(
        "SELECT * FROM projects WHERE organization_id = $1 AND deleted_at IS NULL"
        " ORDER BY created_at",
        org_id,
    )
    return [rows.project(row) for row in found]


async def project(
    conn: asyncpg.Connection, project_id: uuid.UUID, *, lock: bool = False
) -> Project | None:
    suffix = " FOR UPDATE" if lock else ""
    row = await conn.fetchrow(
        f"SELECT * FROM projects WHERE id = $1 AND deleted_at IS NULL{suffix}", project_id
    )
    return None if row is None else rows.project(row)


async def update_project(
    conn: asyncpg.Connection, project_id: uuid.UUID, *, name: str, description: str
) -> Project:
    row = await db.fetchrow_unique(
        conn,
        clashes.project_name_taken,
        f"UPDATE projects SET name = $2, description = $3, updated_at = now(), version = {_NEXT}"
        " WHERE id = $1 RETURNING *",
        project_id,
        name,
        description,
    )
    return rows.project(row)


async def delete_project(conn: asyncpg.Connection, project_id: uuid.UUID) -> Project:
    row = await conn.fetchrow(
        f"UPDATE projects SET deleted_at = now(), version = {_NEXT} WHERE id = $1 RETURNING *",
        project_id,
    )
    return rows.project(row)


async def live_projects(conn: asyncpg.Connection) -> list[Project]:
    """Every project not deleted (the gateway's index snapshot)."""
    found = await conn.fetch("SELECT * FROM projects WHERE deleted_at IS NULL")
    return [rows.project(row) for row in found]


# --- environments


async def insert_environment(
    conn: asyncpg.Connection,
    *,
    env_id: uuid.UUID,
    org_id: uuid.UUID,
    project_id: uuid.UUID,
    name: str,
    mode: str,
    cluster_id: uuid.UUID,
    cloned_from: uuid.UUID | None = None,
) -> Environment:
    row = await db.fetchrow_unique(
        conn,
        clashes.environment_name_taken,
        "INSERT INTO environments (id, organization_id, project_id, name, mode, cluster_id,"
        " cloned_from) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *",
        env_id,
        org_id,
        project_id,
        name,
        mode,
        cluster_id,
        cloned_from,
    )
    return rows.environment(row)


async def environments(conn: asyncpg.Connection, project_id: uuid.UUID) -> list[Environment]:
    found = await conn.fetch(
        "SELECT * FROM environments WHERE project_id = $1 AND deleted_at IS NULL"
        " ORDER BY created_at",
        project_id,
    )
    return [rows.environment(row) for row in found]


async def environment(
    conn: asyncpg.Connection, env_id: uuid.UUID, *, lock: bool = False
) -> Environment | None:
    suffix = " FOR UPDATE" if lock else ""
    row = await conn.fetchrow(
        f"SELECT * FROM environments WHERE id = $1 AND deleted_at IS NULL{suffix}", env_id
    )
    return None if row is None else rows.environment(row)


async def environment_ever(conn: asyncpg.Connection, env_id: uuid.UUID) -> Environment | None:
    """The environment, deleted or not (an id handed out once names one environment forever)."""
    row = await conn.fetchrow("SELECT * FROM environments WHERE id = $1 FOR UPDATE", env_id)
    return None if row is None else rows.environment(row)


async def update_environment(
    conn: asyncpg.Connection, env_id: uuid.UUID, *, name: str, mode: str
) -> Environment:
    row = await db.fetchrow_unique(
        conn,
        clashes.environment_name_taken,
        f"UPDATE environments SET name = $2, mode = $3, updated_at = now(), version = {_NEXT}"
        " WHERE id = $1 RETURNING *",
        env_id,
        name,
        mode,
    )
    return rows.environment(row)


async def delete_environment(conn: asyncpg.Connection, env_id: uuid.UUID) -> Environment:
    row = await conn.fetchrow(
        f"UPDATE environments SET deleted_at = now(), version = {_NEXT} WHERE id = $1 RETURNING *",
        env_id,
    )
    return rows.environment(row)


# --- stages


async def insert_stage(
    conn: asyncpg.Connection,
    *,
    stage_id: uuid.UUID,
    org_id: uuid.UUID,
    env_id: uuid.UUID,
    name: str,
    position: int,
) -> Stage:
    row = await db.fetchrow_unique(
        conn,
        clashes.stage_name_taken,
        "INSERT INTO stages (id, organization_id, environment_id, name, position)"
        " VALUES ($1, $2, $3, $4, $5) RETURNING *",
        stage_id,
        org_id,
        env_id,
        name,
        position,
    )
    return rows.stage(row)


async def stages(conn: asyncpg.Connection, env_id: uuid.UUID) -> list[Stage]:
    found = await conn.fetch(
        "SELECT * FROM stages WHERE environment_id = $1 AND deleted_at IS NULL ORDER BY position",
        env_id,
    )
    return [rows.stage(row) for row in found]


async def stage(conn: asyncpg.Connection, stage_id: uuid.UUID) -> Stage | None:
    row = await conn.fetchrow("SELECT * FROM stages WHERE id = $1 AND deleted_at IS NULL", stage_id)
    return None if row is None else rows.stage(row)


async def update_stage(
    conn: asyncpg.Connection, stage_id: uuid.UUID, *, name: str, position: int
) -> Stage:
    row = await db.fetchrow_unique(
        conn,
        clashes.stage_name_taken,
        f"UPDATE stages SET name = $2, position = $3, version = {_NEXT} WHERE id = $1 RETURNING *",
        stage_id,
        name,
        position,
    )
    return rows.stage(row)


async def delete_stage(conn: asyncpg.Connection, stage_id: uuid.UUID) -> Stage:
    row = await conn.fetchrow(
        f"UPDATE stages SET deleted_at = now(), version = {_NEXT} WHERE id = $1 RETURNING *",
        stage_id,
    )
    return rows.stage(row)


async def services_in_stage(conn: asyncpg.Connection, stage_id: uuid.UUID) -> int:
    n: int = await conn.fetchval(
        "SELECT count(*) FROM services WHERE stage_id = $1 AND deleted_at IS NULL", stage_id
    )
    return n


# --- services


async def insert_service(
    conn: asyncpg.Connection,
    *,
    service_id: uuid.UUID,
    org_id: uuid.UUID,
    project_id: uuid.UUID,
    env_id: uuid.UUID,
    name: str,
    kind: str,
    spec: dict[str, Any],
    stage_id: uuid.UUID | None,
) -> Service:
    row = await db.fetchrow_unique(
        conn,
        clashes.service_name_taken,
        "INSERT INTO services (id, organization_id, project_id, environment_id, name, kind,"
        " spec, stage_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *",
        service_id,
        org_id,
        project_id,
        env_id,
        name,
        kind,
        spec,
        stage_id,
    )
    return rows.service(row)


async def services(conn: asyncpg.Connection, env_id: uuid.UUID) -> list[Service]:
    found = await conn.fetch(
        "SELECT * FROM services WHERE environment_id = $1 AND deleted_at IS NULL"
        " ORDER BY created_at",
        env_id,
    )
    return [rows.service(row) for row in found]


async def service(
    conn: asyncpg.Connection, service_id: uuid.UUID, *, lock: bool = False
) -> Service | None:
    suffix = " FOR UPDATE" if lock else ""
    row = await conn.fetchrow(
        f"SELECT * FROM services WHERE id = $1 AND deleted_at IS NULL{suffix}", service_id
    )
    return None if row is None else rows.service(row)


async def update_service(
    conn: asyncpg.Connection,
    service_id: uuid.UUID,
    *,
    name: str,
    spec: dict[str, Any],
    stage_id: uuid.UUID | None,
) -> Service:
    row = await db.fetchrow_unique(
        conn,
        clashes.service_name_taken,
        f"UPDATE services SET name = $2, spec = $3, stage_id = $4, updated_at = now(),"
        f" version = {_NEXT} WHERE id = $1 RETURNING *",
        service_id,
        name,
        spec,
        stage_id,
    )
    return rows.service(row)


async def delete_service(conn: asyncpg.Connection, service_id: uuid.UUID) -> Service:
    row = await conn.fetchrow(
        f"UPDATE services SET deleted_at = now(), version = {_NEXT} WHERE id = $1 RETURNING *",
        service_id,
    )
    return rows.service(row)


# --- variables


async def insert_variable(
    conn: asyncpg.Connection,
    *,
    variable_id: uuid.UUID,
    org_id: uuid.UUID,
    project_id: uuid.UUID,
    env_id: uuid.UUID | None,
    service_id: uuid.UUID | None,
    scope: str,
    parent_id: uuid.UUID,
    key: str,
    kind: str,
    value: str | None,
    sealed: bytes | None,
    is_secret: bool,
    mount_path: str | None,
    description: str,
) -> Variable:
    row = await conn.fetchrow(
        "INSERT INTO variables (id, organization_id, project_id, environment_id, service_id,"
        " scope, parent_id, key, kind, value, value_sealed, is_secret, mount_path, description)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING *",
        variable_id,
        org_id,
        project_id,
        env_id,
        service_id,
        scope,
        parent_id,
        key,
        kind,
        value,
        sealed,
        is_secret,
        mount_path,
        description,
    )
    return rows.variable(row)


async def variables_of_parent(conn: asyncpg.Connection, parent_id: uuid.UUID) -> list[Variable]:
    found = await conn.fetch(
        "SELECT * FROM variables WHERE parent_id = $1 AND deleted_at IS NULL ORDER BY key",
        parent_id,
    )
    return [rows.variable(row) for row in found]


async def variables_visible(
    conn: asyncpg.Connection,
    *,
    project_id: uuid.UUID,
    env_id: uuid.UUID | None,
    service_id: uuid.UUID | None,
) -> list[Variable]:
    """Project, environment and service variables one service (or environment) sees."""
    found = await conn.fetch(
        "SELECT * FROM variables WHERE deleted_at IS NULL AND project_id = $1 AND ("
        " scope = 'project' OR (scope = 'environment' AND environment_id = $2)"
        " OR (scope = 'service' AND service_id = $3)) ORDER BY key",
        project_id,
        env_id,
        service_id,
    )
    return [rows.variable(row) for row in found]


async def variable(conn: asyncpg.Connection, variable_id: uuid.UUID) -> Variable | None:
    row = await conn.fetchrow(
        "SELECT * FROM variables WHERE id = $1 AND deleted_at IS NULL", variable_id
    )
    return None if row is None else rows.variable(row)


async def update_variable(
    conn: asyncpg.Connection,
    variable_id: uuid.UUID,
    *,
    value: str | None,
    sealed: bytes | None,
    mount_path: str | None,
    description: str,
) -> Variable:
    row = await conn.fetchrow(
        "UPDATE variables SET value = $2, value_sealed = $3, mount_path = $4, description = $5,"
        f" updated_at = now(), version = {_NEXT} WHERE id = $1 RETURNING *",
        variable_id,
        value,
        sealed,
        mount_path,
        description,
    )
    return rows.variable(row)


async def delete_variable(conn: asyncpg.Connection, variable_id: uuid.UUID) -> Variable:
    row = await conn.fetchrow(
        f"UPDATE variables SET deleted_at = now(), version = {_NEXT} WHERE id = $1 RETURNING *",
        variable_id,
    )
    return rows.variable(row)


async def secret_variables(conn: asyncpg.Connection) -> list[SealedValue]:
    """Every secret variable's sealed value, by its id, locked (re-sealing them all)."""
    found = await conn.fetch("SELECT id, value_sealed FROM variables WHERE is_secret FOR UPDATE")
    return [SealedValue(owner_id=row["id"], sealed=bytes(row["value_sealed"])) for row in found]


async def set_sealed_value(conn: asyncpg.Connection, variable_id: uuid.UUID, sealed: bytes) -> None:
    await conn.execute("UPDATE variables SET value_sealed = $2 WHERE id = $1", variable_id, sealed)


# --- database connections (a projection of the deployer's DatabaseConnectionChanged)


async def database_connection_version(
    conn: asyncpg.Connection, service_id: uuid.UUID
) -> int | None:
    """The version stored for a database (its row locked until the transaction ends), if any."""
    version: int | None = await conn.fetchval(
        "SELECT version FROM database_connections WHERE service_id = $1 FOR UPDATE", service_id
    )
    return version


async def upsert_database_connection(
    conn: asyncpg.Connection,
    *,
    service_id: uuid.UUID,
    org_id: uuid.UUID,
    env_id: uuid.UUID,
    engine: str,
    host: str | None,
    port: int | None,
    user: str | None,
    database: str | None,
    sealed: bytes | None,
    version: int,
    deleted: bool,
) -> bool:
    """Store this state unless the same or a newer version is there; True when written."""
    status: str = await conn.execute(
        "INSERT INTO database_connections (service_id, organization_id, environment_id, engine,"
        ' host, port, "user", database, password_sealed, version, deleted)'
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        " ON CONFLICT (service_id) DO UPDATE SET organization_id = EXCLUDED.organization_id,"
        " environment_id = EXCLUDED.environment_id, engine = EXCLUDED.engine,"
        ' host = EXCLUDED.host, port = EXCLUDED.port, "user" = EXCLUDED."user",'
        " database = EXCLUDED.database, password_sealed = EXCLUDED.password_sealed,"
        " version = EXCLUDED.version, deleted = EXCLUDED.deleted, updated_at = now()"
        " WHERE database_connections.version < EXCLUDED.version",
        service_id,
        org_id,
        env_id,
        engine,
        host,
        port,
        user,
        database,
        sealed,
        version,
        deleted,
    )
    return status.endswith(" 1")


async def database_connections(
    conn: asyncpg.Connection, env_id: uuid.UUID
) -> list[DatabaseConnection]:
    """The connections of an environment's deployed databases (not the deleted ones)."""
    found = await conn.fetch(
        "SELECT * FROM database_connections WHERE environment_id = $1 AND NOT deleted"
        " ORDER BY service_id",
        env_id,
    )
    return [rows.database_connection(row) for row in found]


async def sealed_database_passwords(conn: asyncpg.Connection) -> list[SealedValue]:
    """Every stored password, sealed, by its service's id, locked (re-sealing them all)."""
    found = await conn.fetch(
        "SELECT service_id, password_sealed FROM database_connections"
        " WHERE password_sealed IS NOT NULL FOR UPDATE"
    )
    return [
        SealedValue(owner_id=row["service_id"], sealed=bytes(row["password_sealed"]))
        for row in found
    ]


async def set_sealed_database_password(
    conn: asyncpg.Connection, service_id: uuid.UUID, sealed: bytes
) -> None:
    await conn.execute(
        "UPDATE database_connections SET password_sealed = $2 WHERE service_id = $1",
        service_id,
        sealed,
    )


# --- deployment rules


async def upsert_rule(
    conn: asyncpg.Connection, *, env_id: uuid.UUID, org_id: uuid.UUID, rule: dict[str, Any]
) -> SavedRule:
    row = await conn.fetchrow(
        "INSERT INTO deployment_rules (environment_id, organization_id, auto_stop, auto_start,"
        " timezone, weekdays, start_time, stop_time, auto_preview, preview_ttl_hours)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        " ON CONFLICT (environment_id) DO UPDATE SET auto_stop = $3, auto_start = $4,"
        " timezone = $5, weekdays = $6, start_time = $7, stop_time = $8, auto_preview = $9,"
        " preview_ttl_hours = $10,"
        f" updated_at = now(), version = {_NEXT} RETURNING *",
        env_id,
        org_id,
        rule["auto_stop"],
        rule["auto_start"],
        rule["timezone"],
        rule["weekdays"],
        rule["start_time"],
        rule["stop_time"],
        rule["auto_preview"],
        rule.get("preview_ttl_hours"),
    )
    return rows.rule(row)


async def rule(conn: asyncpg.Connection, env_id: uuid.UUID) -> SavedRule | None:
    row = await conn.fetchrow("SELECT * FROM deployment_rules WHERE environment_id = $1", env_id)
    return None if row is None else rows.rule(row)


async def live_clusters(conn: asyncpg.Connection) -> list[Cluster]:
    """Every cluster not deleted (the gateway's index snapshot)."""
    found = await conn.fetch("SELECT * FROM clusters WHERE deleted_at IS NULL")
    return [rows.cluster(row) for row in found]


async def live_stages(conn: asyncpg.Connection) -> list[Stage]:
    """Every stage not deleted (the gateway's index snapshot)."""
    found = await conn.fetch("SELECT * FROM stages WHERE deleted_at IS NULL")
    return [rows.stage(row) for row in found]


async def live_environments(conn: asyncpg.Connection) -> list[Environment]:
    """Every environment not deleted (the gateway's index snapshot)."""
    found = await conn.fetch("SELECT * FROM environments WHERE deleted_at IS NULL")
    return [rows.environment(row) for row in found]


async def live_services(conn: asyncpg.Connection) -> list[Service]:
    """Every service not deleted (the gateway's index snapshot)."""
    found = await conn.fetch("SELECT * FROM services WHERE deleted_at IS NULL")
    return [rows.service(row) for row in found]


async def live_variables(conn: asyncpg.Connection) -> list[Variable]:
    """Every variable not deleted (the gateway's index snapshot)."""
    found = await conn.fetch("SELECT * FROM variables WHERE deleted_at IS NULL")
    return [rows.variable(row) for row in found]


# --- versions (If-Match)

# what a precondition may name: the table and the column that identifies its row
_VERSIONED = {
    "clusters": "id",
    "projects": "id",
    "environments": "id",
    "stages": "id",
    "services": "id",
    "variables": "id",
    "deployment_rules": "environment_id",
}


async def locked_version(conn: asyncpg.Connection, table: str, row_id: uuid.UUID) -> int | None:
    """The row's version, locked until the transaction ends (None: no such live row), so that
    the write checked against it cannot interleave with another."""
    column = _VERSIONED[table]  # a fixed name: never the caller's text
    live = " AND deleted_at IS NULL" if table != "deployment_rules" else ""
    version: int | None = await conn.fetchval(
        f"SELECT version FROM {table} WHERE {column} = $1{live} FOR UPDATE",
        row_id,
    )
    return version
