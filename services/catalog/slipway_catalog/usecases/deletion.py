"""Deleting a project, an environment or a service, with everything under it (the one cascade).

A deletion goes children first, each in the caller's transaction and each published through the
outbox (the deployer's projection and the gateway's index drop what they hear deleted): the
variables of a service before the service, an environment's services, variables and stages
before the environment, a project's environments and variables before the project. A deleted
project, environment or service is audited; the services, stages and variables that go with an
environment or a project are not (their events say they went).
"""

from __future__ import annotations

import uuid

import asyncpg

from slipway_catalog.db import queries as q
from slipway_catalog.domain.services import Service
from slipway_catalog.usecases import environments, projects, publish, services
from slipway_catalog.usecases.deps import Deps
from slipway_libs.actor import Actor


async def delete_project(
    conn: asyncpg.Connection, deps: Deps, actor: Actor, project_id: uuid.UUID
) -> None:
    await projects.get(conn, project_id, lock=True)
    for env in await q.environments(conn, project_id):
        await delete_environment(conn, deps, actor, env.id)
    await _delete_variables(conn, deps, project_id)
    row = await q.delete_project(conn, project_id)
    await publish.project(conn, row)
    await projects.record_audit(conn, actor, row, "DELETE")


async def delete_environment(
    conn: asyncpg.Connection, deps: Deps, actor: Actor, env_id: uuid.UUID
) -> None:
    env = await environments.get(conn, env_id, lock=True)
    project_id = env.project_id
    for service in await q.services(conn, env_id):
        await _delete_service(conn, deps, service.id)
    await _delete_variables(conn, deps, env_id)
    for stage in await q.stages(conn, env_id):
        await publish.stage(conn, await q.delete_stage(conn, stage.id), project_id)
    row = await q.delete_environment(conn, env_id)
    await publish.environment(conn, row)
    await environments.record_audit(conn, actor, row, "DELETE")


async def delete_service(
    conn: asyncpg.Connection, deps: Deps, actor: Actor, service_id: uuid.UUID
) -> None:
    await services.get(conn, service_id, lock=True)
    row = await _delete_service(conn, deps, service_id)
    await services.record_audit(conn, actor, row, "DELETE")


async def _delete_service(conn: asyncpg.Connection, deps: Deps, service_id: uuid.UUID) -> Service:
    await _delete_variables(conn, deps, service_id)
    row = await q.delete_service(conn, service_id)
    await publish.service(conn, row)
    return row


async def _delete_variables(conn: asyncpg.Connection, deps: Deps, parent_id: uuid.UUID) -> None:
    """The variables of a project, an environment or a service (no check that others still
    reference them: everything that could is deleted with them)."""
    for variable in await q.variables_of_parent(conn, parent_id):
        row = await q.delete_variable(conn, variable.id)
        await publish.variable(conn, row, transport=deps.transport, at_rest=deps.at_rest)
