"""SQL of what is new in git: the latest commit pushed to each application's branch
(``service_heads``), and the commit each service last deployed (its last finished build in a
deployment). Row-level security scopes reads to the acting organization; the consumer that
writes heads sees every row, so its statement names the organization."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

# the commit a service run built, or that its image (``repository:<commit>``, a build's tag)
# was built from when it reused an earlier build's image
_COMMIT = "COALESCE(s.commit, substring(s.image from ':([0-9a-f]{40})$'))"


@dataclass(frozen=True)
class Head:
    service_id: uuid.UUID
    branch: str
    commit: str
    pushed_at: datetime


@dataclass(frozen=True)
class DeployedCommit:
    service_id: uuid.UUID
    commit: str
    built_from: datetime  # when the deployment that built it started: what it could see


async def record_head(
    conn: asyncpg.Connection,
    *,
    service_id: uuid.UUID,
    organization_id: uuid.UUID,
    environment_id: uuid.UUID,
    branch: str,
    commit: str,
    pushed_at: datetime,
) -> bool:
    """The branch's newest push wins (a late delivery of an older one changes nothing)."""
    status: str = await conn.execute(
        "INSERT INTO service_heads (service_id, organization_id, environment_id, branch, commit,"
        " pushed_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (service_id) DO UPDATE"
        " SET branch = EXCLUDED.branch, commit = EXCLUDED.commit, pushed_at = EXCLUDED.pushed_at"
        " WHERE service_heads.pushed_at < EXCLUDED.pushed_at"
        " AND service_heads.organization_id = EXCLUDED.organization_id",
        service_id,
        organization_id,
        environment_id,
        branch,
        commit,
        pushed_at,
    )
    return status.endswith(" 1")


async def heads(conn: asyncpg.Connection, environment_id: uuid.UUID) -> dict[uuid.UUID, Head]:
    rows = await conn.fetch(
        "SELECT service_id, branch, commit, pushed_at FROM service_heads WHERE environment_id = $1",
        environment_id,
    )
    return {
        r["service_id"]: Head(
            service_id=r["service_id"],
            branch=r["branch"],
            commit=r["commit"],
            pushed_at=r["pushed_at"],
        )
        for r in rows
    }


async def deployed_commits(
    conn: asyncpg.Connection, environment_id: uuid.UUID
) -> dict[uuid.UUID, DeployedCommit]:
    """Per service of the environment, the commit its last deployment runs (a redeploy or a
    rollback runs an earlier build's image, tagged with its commit), and when the latest
    deployment that built that commit started."""
    rows = await conn.fetch(
        "SELECT last.service_id, last.commit, built.started_at FROM ("
        f" SELECT DISTINCT ON (s.service_id) s.service_id, {_COMMIT} AS commit"
        " FROM deployment_services s JOIN deployments d ON d.id = s.deployment_id"
        " WHERE d.environment_id = $1 AND s.status = 'DONE'"
        " ORDER BY s.service_id, s.finished_at DESC NULLS LAST) last"
        # the environment's deployments (indexed), then their runs by primary key
        " CROSS JOIN LATERAL (SELECT max(d.started_at) AS started_at"
        " FROM deployments d JOIN deployment_services s ON s.deployment_id = d.id"
        " WHERE d.environment_id = $1 AND s.service_id = last.service_id"
        " AND s.build_id IS NOT NULL AND s.commit = last.commit) built"
        " WHERE last.commit IS NOT NULL",
        environment_id,
    )
    return {
        r["service_id"]: DeployedCommit(
            service_id=r["service_id"], commit=r["commit"], built_from=r["started_at"]
        )
        for r in rows
        if r["started_at"] is not None
    }


async def commits_of(
    conn: asyncpg.Connection, deployment_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[dict[str, str]]]:
    """What each deployment built: ``[{"service_id", "commit"}]`` per deployment."""
    rows = await conn.fetch(
        f"SELECT deployment_id, service_id, {_COMMIT} AS commit FROM deployment_services s"
        f" WHERE deployment_id = ANY($1::uuid[]) AND {_COMMIT} IS NOT NULL"
        " ORDER BY deployment_id, position, name",
        deployment_ids,
    )
    found: dict[uuid.UUID, list[dict[str, str]]] = {}
    for r in rows:
        found.setdefault(r["deployment_id"], []).append(
            {"service_id": str(r["service_id"]), "commit": r["commit"]}
        )
    return found
