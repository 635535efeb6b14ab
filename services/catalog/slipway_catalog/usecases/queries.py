"""Read-only lists behind the API."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from slipway_catalog.db import queries as q
from slipway_catalog.domain.environments import Environment
from slipway_catalog.domain.projects import Project
from slipway_catalog.domain.services import Service
from slipway_catalog.domain.stages import Stage
from slipway_catalog.domain.variables import Variable
from slipway_catalog.usecases import environments, organizations, projects, publish
from slipway_catalog.usecases.deps import Deps


async def projects_of(conn: asyncpg.Connection, deps: Deps, org_id: uuid.UUID) -> list[Project]:
    await organizations.require(conn, deps, org_id)
    return await q.projects(conn, org_id)


async def environments_of(conn: asyncpg.Connection, project_id: uuid.UUID) -> list[Environment]:
    await projects.get(conn, project_id)
    return await q.environments(conn, project_id)


async def stages_of(conn: asyncpg.Connection, env_id: uuid.UUID) -> list[Stage]:
    await environments.get(conn, env_id)
    return await q.stages(conn, env_id)


async def services_of(conn: asyncpg.Connection, env_id: uuid.UUID) -> list[Service]:
    await environments.get(conn, env_id)
    return await q.services(conn, env_id)


async def variables_of(conn: asyncpg.Connection, parent_id: uuid.UUID) -> list[Variable]:
    return await q.variables_of_parent(conn, parent_id)


async def index_snapshot(conn: asyncpg.Connection, deps: Deps) -> list[dict[str, Any]]:
    """Every live entity as the event its last change published (for the gateway's index)."""
    out: list[dict[str, Any]] = []

    def add(payload: Any) -> None:
        out.append({"type": payload.event_type, "data": payload.model_dump(mode="json")})

    for cluster in await q.live_clusters(conn):
        add(publish.cluster_state(cluster))
    for project in await q.live_projects(conn):
        add(publish.project_state(project))
    for env in await q.live_environments(conn):
        add(publish.environment_state(env))
    for service in await q.live_services(conn):
        add(publish.service_state(service))
    for stage in await q.live_stages(conn):
        add(publish.stage_state(stage))
    for variable in await q.live_variables(conn):
        add(publish.variable_state(variable, deps.transport, deps.at_rest))
    return out
