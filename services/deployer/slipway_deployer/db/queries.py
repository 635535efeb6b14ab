"""All SQL of the deployer service. Every query answers typed values (``db.rows`` maps each
row), ``None`` for "not found": no ``asyncpg.Record`` leaves this package."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from slipway_deployer.db import rows
from slipway_deployer.db.rows import DeploymentOwner
from slipway_deployer.domain.catalog import (
    CatalogCluster,
    CatalogEnvironment,
    CatalogService,
    CatalogStage,
    CatalogVariable,
)
from slipway_deployer.domain.deployments import (
    Deployment,
    EnvironmentStatus,
    ServiceRun,
    ServiceStatus,
    StageRun,
)
from slipway_deployer.domain.running import DatabaseInstance, JobOutputs, JobRun

# table -> its columns (the first is the key); every one also has ``version``
_PROJECTED: dict[str, tuple[str, ...]] = {
    "catalog_clusters": (
        "id",
        "organization_id",
        "name",
        "kind",
        "api_url",
        "credentials_sealed",
        "capabilities",
        "settings",
        "deleted",
    ),
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
_JSON = frozenset({"spec", "rule", "capabilities", "settings"})


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


async def reach_revision(
    conn: asyncpg.Connection, project_id: uuid.UUID, org_id: uuid.UUID, revision: int
) -> None:
    """The projection has applied that revision of the project (never moves back)."""
    await conn.execute(
        "INSERT INTO catalog_revisions (project_id, organization_id, revision)"
        " VALUES ($1, $2, $3) ON CONFLICT (project_id) DO UPDATE"
        " SET revision = GREATEST(catalog_revisions.revision, EXCLUDED.revision)",
        project_id,
        org_id,
        revision,
    )


async def catalog_revision(conn: asyncpg.Connection, project_id: uuid.UUID) -> int:
    """The highest revision of the project the projection has applied (0: none yet)."""
    revision = await conn.fetchval(
        "SELECT revision FROM catalog_revisions WHERE project_id = $1", project_id
    )
    return int(revision or 0)


async def environment(conn: asyncpg.Connection, env_id: uuid.UUID) -> CatalogEnvironment | None:
    row = await conn.fetchrow(
        "SELECT * FROM catalog_environments WHERE id = $1 AND NOT deleted", env_id
    )
    return None if row is None else rows.catalog_environment(row)


async def services_of(conn: asyncpg.Connection, env_id: uuid.UUID) -> list[CatalogService]:
    found = await conn.fetch(
        "SELECT * FROM catalog_services WHERE environment_id = $1 AND NOT deleted ORDER BY name",
        env_id,
    )
    return [rows.catalog_service(row) for row in found]


async def stages_of(conn: asyncpg.Connection, env_id: uuid.UUID) -> list[CatalogStage]:
    found = await conn.fetch(
        "SELECT * FROM catalog_stages WHERE environment_id = $1 AND NOT deleted ORDER BY position",
        env_id,
    )
    return [rows.catalog_stage(row) for row in found]


async def variables_of(conn: asyncpg.Connection, project_id: uuid.UUID) -> list[CatalogVariable]:
    found = await conn.fetch(
        "SELECT * FROM catalog_variables WHERE project_id = $1 AND NOT deleted ORDER BY key",
        project_id,
    )
    return [rows.catalog_variable(row) for row in found]


async def service(conn: asyncpg.Connection, service_id: uuid.UUID) -> CatalogService | None:
    row = await conn.fetchrow(
        "SELECT * FROM catalog_services WHERE id = $1 AND NOT deleted", service_id
    )
    return None if row is None else rows.catalog_service(row)


async def variables_visible(
    conn: asyncpg.Connection, project_id: uuid.UUID, parents: list[uuid.UUID]
) -> list[CatalogVariable]:
    """The project's variables, and those whose parent is one of ``parents`` (environments or
    services)."""
    found = await conn.fetch(
        "SELECT * FROM catalog_variables WHERE project_id = $1 AND NOT deleted"
        " AND (scope = 'project' OR parent_id = ANY($2::uuid[])) ORDER BY key",
        project_id,
        parents,
    )
    return [rows.catalog_variable(row) for row in found]


# --- deployments -------------------------------------------------------------------------------


async def lock_environment(conn: asyncpg.Connection, env_id: uuid.UUID) -> None:
    """Serialize requests on one environment (their order is the queue's order)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1::uuid::text, 7))", env_id)


async def environment_status(
    conn: asyncpg.Connection, env_id: uuid.UUID
) -> EnvironmentStatus | None:
    row = await conn.fetchrow("SELECT * FROM environment_status WHERE environment_id = $1", env_id)
    return None if row is None else rows.environment_status(row)


async def save_environment_status(
    conn: asyncpg.Connection,
    env_id: uuid.UUID,
    org_id: uuid.UUID,
    state: str,
    *,
    action: str | None = None,
    deployment_id: uuid.UUID | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO environment_status AS s"
        " (environment_id, organization_id, state, last_action, last_deployment_id)"
        " VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (environment_id) DO UPDATE SET state = $3,"
        " last_action = COALESCE($4, s.last_action),"
        " last_deployment_id = COALESCE($5, s.last_deployment_id), updated_at = now()",
        env_id,
        org_id,
        state,
        action,
        deployment_id,
    )


async def service_statuses(conn: asyncpg.Connection, env_id: uuid.UUID) -> list[ServiceStatus]:
    found = await conn.fetch("SELECT * FROM service_status WHERE environment_id = $1", env_id)
    return [rows.service_status(row) for row in found]


async def service_status(conn: asyncpg.Connection, service_id: uuid.UUID) -> ServiceStatus | None:
    row = await conn.fetchrow("SELECT * FROM service_status WHERE service_id = $1", service_id)
    return None if row is None else rows.service_status(row)


async def save_service_status(
    conn: asyncpg.Connection,
    *,
    service_id: uuid.UUID,
    environment_id: uuid.UUID,
    organization_id: uuid.UUID,
    state: str,
    action: str | None = None,
    running_status: str | None = None,
    urls: list[str] | None = None,
    message: str | None = None,
    deployed_config: str | None = None,
    deployed_image: str | None = None,
    deployment_id: uuid.UUID | None = None,
) -> None:
    """Upsert; ``None`` keeps the current value (except ``message``, replaced every time)."""
    await conn.execute(
        "INSERT INTO service_status AS s (service_id, environment_id, organization_id, state,"
        " last_action, running_status, urls, message, deployed_config, deployed_image,"
        " last_deployment_id)"
        " VALUES ($1, $2, $3, $4, $5, $6, COALESCE($7::jsonb, '[]'), $8, $9, $10, $11)"
        " ON CONFLICT (service_id) DO UPDATE SET state = $4,"
        " last_action = COALESCE($5, s.last_action),"
        " running_status = COALESCE($6, s.running_status),"
        " urls = COALESCE($7::jsonb, s.urls), message = $8,"
        " deployed_config = COALESCE($9, s.deployed_config),"
        " deployed_image = COALESCE($10, s.deployed_image),"
        " last_deployment_id = COALESCE($11, s.last_deployment_id), updated_at = now()",
        service_id,
        environment_id,
        organization_id,
        state,
        action,
        running_status,
        urls,
        message,
        deployed_config,
        deployed_image,
        deployment_id,
    )


async def set_running_status(
    conn: asyncpg.Connection, service_id: uuid.UUID, running_status: str | None, urls: list[str]
) -> bool:
    """True when it changed."""
    status: str = await conn.execute(
        "UPDATE service_status SET running_status = $2, urls = $3::jsonb, updated_at = now()"
        " WHERE service_id = $1 AND (running_status IS DISTINCT FROM $2 OR urls <> $3::jsonb)",
        service_id,
        running_status,
        urls,
    )
    return status.endswith(" 1")


async def queued(conn: asyncpg.Connection, env_id: uuid.UUID) -> list[Deployment]:
    found = await conn.fetch(
        "SELECT * FROM deployments WHERE environment_id = $1 AND status = 'QUEUED' ORDER BY seq",
        env_id,
    )
    return [rows.deployment(row) for row in found]


async def running(conn: asyncpg.Connection, env_id: uuid.UUID) -> Deployment | None:
    row = await conn.fetchrow(
        "SELECT * FROM deployments WHERE environment_id = $1"
        " AND status IN ('ONGOING', 'CANCELING')",
        env_id,
    )
    return None if row is None else rows.deployment(row)


# Column names in the two helpers below come from this service's code, never from a request.


def _insert(table: str, row: dict[str, Any]) -> str:
    values = ", ".join(f"${i}" for i in range(1, len(row) + 1))
    return f"INSERT INTO {table} ({', '.join(row)}) VALUES ({values})"


def _assignments(fields: dict[str, Any], first: int) -> str:
    """``a = $first, b = $first+1, ...`` (``steps`` is jsonb)."""
    return ", ".join(
        f"{name} = ${i}{'::jsonb' if name == 'steps' else ''}"
        for i, name in enumerate(fields, start=first)
    )


async def insert_deployment(conn: asyncpg.Connection, row: dict[str, Any]) -> Deployment:
    inserted = await conn.fetchrow(f"{_insert('deployments', row)} RETURNING *", *row.values())
    return rows.deployment(inserted)


async def deployment(conn: asyncpg.Connection, deployment_id: uuid.UUID) -> Deployment | None:
    row = await conn.fetchrow("SELECT * FROM deployments WHERE id = $1", deployment_id)
    return None if row is None else rows.deployment(row)


async def history(
    conn: asyncpg.Connection,
    env_id: uuid.UUID,
    *,
    service_id: uuid.UUID | None,
    before_seq: int | None,
    limit: int,
) -> list[Deployment]:
    found = await conn.fetch(
        "SELECT d.* FROM deployments d WHERE d.environment_id = $1"
        " AND ($2::uuid IS NULL OR EXISTS (SELECT 1 FROM deployment_services s"
        "      WHERE s.deployment_id = d.id AND s.service_id = $2))"
        " AND ($3::bigint IS NULL OR d.seq < $3) ORDER BY d.seq DESC LIMIT $4",
        env_id,
        service_id,
        before_seq,
        limit,
    )
    return [rows.deployment(row) for row in found]


async def claim(conn: asyncpg.Connection, limit: int) -> list[Deployment]:
    """Take the head of each environment's queue whose environment runs nothing, oldest first:
    ONGOING from now on, planned by its execution. One statement, whatever the number."""
    found = await conn.fetch(
        "UPDATE deployments SET status = 'ONGOING', started_at = clock_timestamp(),"
        " heartbeat_at = clock_timestamp()"
        " WHERE id IN (SELECT d.id FROM deployments d WHERE d.status = 'QUEUED'"
        "   AND d.seq = (SELECT min(q.seq) FROM deployments q"
        "                WHERE q.environment_id = d.environment_id AND q.status = 'QUEUED')"
        "   AND NOT EXISTS (SELECT 1 FROM deployments r WHERE r.environment_id = d.environment_id"
        "                   AND r.status IN ('ONGOING', 'CANCELING'))"
        "   ORDER BY d.seq LIMIT $1 FOR UPDATE SKIP LOCKED)"
        " RETURNING *",
        limit,
    )
    return sorted((rows.deployment(row) for row in found), key=lambda d: d.seq)


async def cancel_queued(conn: asyncpg.Connection, deployment_id: uuid.UUID) -> Deployment | None:
    """Cancel a request still queued; None when the worker has just taken it."""
    row = await conn.fetchrow(
        "UPDATE deployments SET status = 'CANCELED', reason = 'CANCELED',"
        " finished_at = clock_timestamp() WHERE id = $1 AND status = 'QUEUED' RETURNING *",
        deployment_id,
    )
    return None if row is None else rows.deployment(row)


async def unfinished(conn: asyncpg.Connection) -> list[Deployment]:
    found = await conn.fetch(
        "SELECT * FROM deployments WHERE status IN ('ONGOING', 'CANCELING') ORDER BY seq"
    )
    return [rows.deployment(row) for row in found]


async def update_deployment(
    conn: asyncpg.Connection, deployment_id: uuid.UUID, **fields: Any
) -> Deployment:
    row = await conn.fetchrow(
        f"UPDATE deployments SET {_assignments(fields, 2)} WHERE id = $1 RETURNING *",
        deployment_id,
        *fields.values(),
    )
    return rows.deployment(row)


async def heartbeat(conn: asyncpg.Connection, ids: list[uuid.UUID]) -> None:
    await conn.execute(
        "UPDATE deployments SET heartbeat_at = now() WHERE id = ANY($1::uuid[])", ids
    )


async def insert_stages(conn: asyncpg.Connection, rows: list[tuple[Any, ...]]) -> None:
    await conn.executemany(
        "INSERT INTO deployment_stages (deployment_id, position, stage_id, name, status)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        rows,
    )


async def stages(conn: asyncpg.Connection, deployment_id: uuid.UUID) -> list[StageRun]:
    found = await conn.fetch(
        "SELECT * FROM deployment_stages WHERE deployment_id = $1 ORDER BY position",
        deployment_id,
    )
    return [rows.stage_run(row) for row in found]


async def set_stage_status(
    conn: asyncpg.Connection, deployment_id: uuid.UUID, position: int, status: str
) -> None:
    await conn.execute(
        "UPDATE deployment_stages SET status = $3,"
        " started_at = CASE WHEN $3 = 'ONGOING' THEN now() ELSE started_at END,"
        " finished_at = CASE WHEN $3 IN ('DONE', 'ERROR', 'SKIPPED', 'CANCELED') THEN now()"
        "                    ELSE finished_at END"
        " WHERE deployment_id = $1 AND position = $2",
        deployment_id,
        position,
        status,
    )


async def insert_service_runs(conn: asyncpg.Connection, rows: list[tuple[Any, ...]]) -> None:
    await conn.executemany(
        "INSERT INTO deployment_services (deployment_id, service_id, position, name, kind,"
        " status) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        rows,
    )


async def service_runs(conn: asyncpg.Connection, deployment_id: uuid.UUID) -> list[ServiceRun]:
    found = await conn.fetch(
        "SELECT * FROM deployment_services WHERE deployment_id = $1 ORDER BY position, name",
        deployment_id,
    )
    return [rows.service_run(row) for row in found]


async def update_service_run(
    conn: asyncpg.Connection, deployment_id: uuid.UUID, service_id: uuid.UUID, **fields: Any
) -> ServiceRun:
    row = await conn.fetchrow(
        f"UPDATE deployment_services SET {_assignments(fields, 3)}"
        " WHERE deployment_id = $1 AND service_id = $2 RETURNING *",
        deployment_id,
        service_id,
        *fields.values(),
    )
    return rows.service_run(row)


async def record_build(conn: asyncpg.Connection, build_id: uuid.UUID, **fields: Any) -> None:
    await conn.execute(
        f"UPDATE deployment_services SET {_assignments(fields, 2)} WHERE build_id = $1",
        build_id,
        *fields.values(),
    )


async def notify(conn: asyncpg.Connection, channel: str, payload: str) -> None:
    await conn.execute("SELECT pg_notify($1, $2)", channel, payload)


# --- what runs where ---------------------------------------------------------------------------


async def database_instances(conn: asyncpg.Connection, env_id: uuid.UUID) -> list[DatabaseInstance]:
    found = await conn.fetch(
        "SELECT * FROM database_instances WHERE environment_id = $1 AND NOT deleted", env_id
    )
    return [rows.database_instance(row) for row in found]


async def save_database_instance(conn: asyncpg.Connection, row: dict[str, Any]) -> DatabaseInstance:
    saved = await conn.fetchrow(
        "INSERT INTO database_instances AS d (service_id, organization_id, environment_id,"
        " engine, host, port, db_user, db_name, password_sealed)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        " ON CONFLICT (service_id) DO UPDATE SET host = $5, port = $6, db_user = $7,"
        " db_name = $8, password_sealed = $9, deleted = false, version = d.version + 1"
        " RETURNING *",
        row["service_id"],
        row["organization_id"],
        row["environment_id"],
        row["engine"],
        row["host"],
        row["port"],
        row["db_user"],
        row["db_name"],
        row["password_sealed"],
    )
    return rows.database_instance(saved)


async def delete_database_instance(
    conn: asyncpg.Connection, service_id: uuid.UUID
) -> DatabaseInstance | None:
    row = await conn.fetchrow(
        "UPDATE database_instances SET deleted = true, version = version + 1"
        " WHERE service_id = $1 AND NOT deleted RETURNING *",
        service_id,
    )
    return None if row is None else rows.database_instance(row)


async def job_outputs(conn: asyncpg.Connection, env_id: uuid.UUID) -> list[JobOutputs]:
    found = await conn.fetch(
        "SELECT * FROM job_outputs WHERE environment_id = $1 ORDER BY updated_at", env_id
    )
    return [rows.job_outputs(row) for row in found]


async def save_job_outputs(
    conn: asyncpg.Connection, env_id: uuid.UUID, service_id: uuid.UUID, sealed: bytes
) -> None:
    await conn.execute(
        "INSERT INTO job_outputs (environment_id, service_id, outputs_sealed) VALUES ($1, $2, $3)"
        " ON CONFLICT (environment_id, service_id) DO UPDATE SET outputs_sealed = $3,"
        " updated_at = now()",
        env_id,
        service_id,
        sealed,
    )


async def forget_environment(conn: asyncpg.Connection, env_id: uuid.UUID) -> None:
    """After a deletion: what ran there is gone (the history stays)."""
    await conn.execute("DELETE FROM job_outputs WHERE environment_id = $1", env_id)
    await conn.execute(
        "UPDATE service_status SET running_status = NULL, urls = '[]' WHERE environment_id = $1",
        env_id,
    )


# --- job runs ----------------------------------------------------------------------------------


async def insert_job_run(conn: asyncpg.Connection, row: dict[str, Any]) -> JobRun | None:
    """None when that scheduled run exists already."""
    inserted = await conn.fetchrow(
        f"{_insert('job_runs', row)}"
        " ON CONFLICT (service_id, scheduled_at) WHERE scheduled_at IS NOT NULL DO NOTHING"
        " RETURNING *",
        *row.values(),
    )
    return None if inserted is None else rows.job_run(inserted)


async def active_job_run(conn: asyncpg.Connection, service_id: uuid.UUID) -> JobRun | None:
    row = await conn.fetchrow(
        "SELECT * FROM job_runs WHERE service_id = $1"
        " AND status IN ('QUEUED', 'RUNNING', 'CANCELING') LIMIT 1",
        service_id,
    )
    return None if row is None else rows.job_run(row)


async def scheduled_run_exists(
    conn: asyncpg.Connection, service_id: uuid.UUID, scheduled_at: Any
) -> bool:
    found = await conn.fetchval(
        "SELECT 1 FROM job_runs WHERE service_id = $1 AND scheduled_at = $2",
        service_id,
        scheduled_at,
    )
    return found is not None


async def replace_job_runs(conn: asyncpg.Connection, service_id: uuid.UUID, message: str) -> int:
    """The ``replace`` policy: the service's queued runs end CANCELED now, its running ones
    become CANCELING (the worker stops them); how many there were."""
    found = await conn.fetch(
        "UPDATE job_runs SET status = CASE status WHEN 'QUEUED' THEN 'CANCELED' ELSE 'CANCELING'"
        " END, message = $2, finished_at = CASE status WHEN 'QUEUED' THEN now() END"
        " WHERE service_id = $1 AND status IN ('QUEUED', 'RUNNING') RETURNING id",
        service_id,
        message,
    )
    return len(found)


async def canceling_job_runs(conn: asyncpg.Connection) -> list[uuid.UUID]:
    found = await conn.fetch("SELECT id FROM job_runs WHERE status = 'CANCELING'")
    return [row["id"] for row in found]


async def claim_job_runs(conn: asyncpg.Connection, limit: int) -> list[JobRun]:
    found = await conn.fetch(
        "UPDATE job_runs SET status = 'RUNNING', started_at = now() WHERE id IN ("
        " SELECT id FROM job_runs AS queued WHERE status = 'QUEUED'"
        # a run that replaces another starts once that one has stopped
        " AND NOT EXISTS (SELECT 1 FROM job_runs AS old WHERE old.service_id = queued.service_id"
        " AND old.status = 'CANCELING')"
        " ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED) RETURNING *",
        limit,
    )
    return [rows.job_run(row) for row in found]


async def running_job_runs(conn: asyncpg.Connection) -> list[JobRun]:
    found = await conn.fetch(
        "SELECT * FROM job_runs WHERE status IN ('RUNNING', 'CANCELING') ORDER BY seq"
    )
    return [rows.job_run(row) for row in found]


async def finish_job_run(
    conn: asyncpg.Connection,
    run_id: uuid.UUID,
    status: str,
    *,
    exit_code: int | None,
    message: str | None,
) -> JobRun:
    row = await conn.fetchrow(
        "UPDATE job_runs SET status = $2, exit_code = $3, message = $4, finished_at = now()"
        " WHERE id = $1 RETURNING *",
        run_id,
        status,
        exit_code,
        message,
    )
    return rows.job_run(row)


async def job_runs(conn: asyncpg.Connection, service_id: uuid.UUID, limit: int) -> list[JobRun]:
    found = await conn.fetch(
        "SELECT * FROM job_runs WHERE service_id = $1 ORDER BY seq DESC LIMIT $2",
        service_id,
        limit,
    )
    return [rows.job_run(row) for row in found]


# --- reconciliation ----------------------------------------------------------------------------


async def orphans(conn: asyncpg.Connection) -> list[CatalogService]:
    """Services the catalog deleted that may still run here (deployed once, not torn down),
    in environments with no deletion pending."""
    found = await conn.fetch(
        "SELECT c.* FROM catalog_services c"
        " JOIN catalog_environments e ON e.id = c.environment_id"
        " WHERE c.deleted AND ("
        "   EXISTS (SELECT 1 FROM service_status s WHERE s.service_id = c.id"
        "           AND s.state NOT IN ('READY', 'DELETED'))"
        "   OR EXISTS (SELECT 1 FROM database_instances i WHERE i.service_id = c.id"
        "              AND NOT i.deleted))"
        " AND NOT EXISTS (SELECT 1 FROM deployments d WHERE d.environment_id = c.environment_id"
        "   AND d.action = 'DELETE' AND d.status IN ('QUEUED', 'ONGOING', 'CANCELING'))"
        # a teardown that failed is tried again after a while, not in a loop
        " AND NOT EXISTS (SELECT 1 FROM deployments d WHERE d.environment_id = c.environment_id"
        "   AND d.action = 'DELETE' AND d.trigger = 'system' AND d.status = 'ERROR'"
        "   AND d.finished_at > now() - interval '5 minutes')"
        " ORDER BY c.environment_id, c.name"
    )
    return [rows.catalog_service(row) for row in found]


async def environment_any(conn: asyncpg.Connection, env_id: uuid.UUID) -> CatalogEnvironment | None:
    """Also a deleted one (a tombstone)."""
    row = await conn.fetchrow("SELECT * FROM catalog_environments WHERE id = $1", env_id)
    return None if row is None else rows.catalog_environment(row)


async def environment_cluster(
    conn: asyncpg.Connection, env_id: uuid.UUID
) -> tuple[uuid.UUID | None, CatalogCluster | None]:
    """The cluster the environment (also a deleted one) runs on: its id (None: the environment
    is unknown) and the cluster (None: unknown here; a deleted cluster stays a tombstone)."""
    row = await conn.fetchrow(
        "SELECT e.cluster_id, c.id AS known, c.* FROM catalog_environments e"
        " LEFT JOIN catalog_clusters c ON c.id = e.cluster_id AND c.organization_id ="
        " e.organization_id WHERE e.id = $1",
        env_id,
    )
    if row is None:
        return None, None
    return row["cluster_id"], None if row["known"] is None else rows.catalog_cluster(row)


# --- read by the worker, the executions and the gateway's index -------------------------------


async def believed_running(conn: asyncpg.Connection) -> list[ServiceStatus]:
    """Services last seen running (or trying to): what a new leader follows again."""
    found = await conn.fetch(
        "SELECT * FROM service_status"
        " WHERE running_status IN ('RUNNING', 'WARNING', 'STARTING', 'ERROR')"
    )
    return [rows.service_status(row) for row in found]


async def watched(conn: asyncpg.Connection) -> list[ServiceStatus]:
    """Long-running services the runtime may run now: the monitor's round."""
    found = await conn.fetch(
        "SELECT s.* FROM service_status s JOIN catalog_services c"
        " ON c.id = s.service_id WHERE s.running_status IS NOT NULL"
        " AND s.running_status <> 'STOPPED' AND c.kind IN ('application', 'container')"
    )
    return [rows.service_status(row) for row in found]


async def service_run(
    conn: asyncpg.Connection, deployment_id: uuid.UUID, service_id: uuid.UUID
) -> ServiceRun | None:
    row = await conn.fetchrow(
        "SELECT * FROM deployment_services WHERE deployment_id = $1 AND service_id = $2",
        deployment_id,
        service_id,
    )
    return None if row is None else rows.service_run(row)


async def lock_build(conn: asyncpg.Connection, build_id: uuid.UUID) -> ServiceRun | None:
    """The service run that asked for the build, locked until the transaction ends."""
    row = await conn.fetchrow(
        "SELECT * FROM deployment_services WHERE build_id = $1 FOR UPDATE", build_id
    )
    return None if row is None else rows.service_run(row)


async def snapshot_image(
    conn: asyncpg.Connection, deployment_id: uuid.UUID, service_id: uuid.UUID, image: str
) -> dict[str, Any]:
    """The deployment's snapshot with the service's image recorded in it."""
    snapshot = await conn.fetchval(
        "UPDATE deployments SET snapshot = jsonb_set(snapshot, ARRAY['images', $2::text],"
        " to_jsonb($3::text)) WHERE id = $1 RETURNING snapshot",
        deployment_id,
        str(service_id),
        image,
    )
    return dict(snapshot)


async def snapshot_chart_commit(
    conn: asyncpg.Connection, deployment_id: uuid.UUID, service_id: uuid.UUID, commit: str
) -> None:
    """The commit a git chart was installed from, recorded in the deployment's snapshot
    (``chart_commits``), so deploying the snapshot again (rollback) installs the same chart."""
    await conn.execute(
        "UPDATE deployments SET snapshot = jsonb_set(snapshot, '{chart_commits}',"
        " COALESCE(snapshot->'chart_commits', '{}'::jsonb) || jsonb_build_object($2::text,"
        " $3::text)) WHERE id = $1",
        deployment_id,
        str(service_id),
        commit,
    )


async def deployment_owners(
    conn: asyncpg.Connection, ids: list[uuid.UUID]
) -> list[DeploymentOwner]:
    found = await conn.fetch(
        "SELECT id, environment_id, organization_id FROM deployments WHERE id = ANY($1::uuid[])",
        ids,
    )
    return [rows.deployment_owner(row) for row in found]
