"""Read-only lists behind the API."""

from __future__ import annotations

import uuid

import asyncpg

from slipway_catalog.db import queries as q
from slipway_catalog.usecases import environments, organizations, projects
from slipway_catalog.usecases.deps import Deps


async def projects_of(
    conn: asyncpg.Connection, deps: Deps, org_id: uuid.UUID
) -> list[asyncpg.Record]:
    await organizations.require(conn, deps, org_id)
    return await q.projects(conn, org_id)


async def environments_of(conn: asyncpg.Connection, project_id: uuid.UUID) -> list[asyncpg.Record]:
    await projects.get(conn, project_id)
    return await q.environments(conn, project_id)


async def stages_of(conn: asyncpg.Connection, env_id: uuid.UUID) -> list[asyncpg.Record]:
    await environments.get(conn, env_id)
    return await q.stages(conn, env_id)


async def services_of(conn: asyncpg.Connection, env_id: uuid.UUID) -> list[asyncpg.Record]:
    await environments.get(conn, env_id)
    return await q.services(conn, env_id)


async def variables_of(conn: asyncpg.Connection, parent_id: uuid.UUID) -> list[asyncpg.Record]:
    return await q.variables_of_parent(conn, parent_id)
