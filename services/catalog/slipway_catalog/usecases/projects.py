"""Projects: named per organization (unique, case-insensitive)."""

from __future__ import annotations

import uuid

import asyncpg

from slipway_catalog.db import queries as q
from slipway_catalog.domain.names import display_name
from slipway_catalog.domain.projects import Project
from slipway_catalog.usecases import organizations, publish
from slipway_catalog.usecases.deps import Deps
from slipway_libs import audit
from slipway_libs.actor import Actor
from slipway_libs.errors import Missing


async def get(conn: asyncpg.Connection, project_id: uuid.UUID, *, lock: bool = False) -> Project:
    row = await q.project(conn, project_id, lock=lock)
    if row is None:
        raise Missing("PROJECT_NOT_FOUND", "No such project.")
    return row


async def create(
    conn: asyncpg.Connection,
    deps: Deps,
    actor: Actor,
    org_id: uuid.UUID,
    *,
    name: str,
    description: str,
) -> Project:
    await organizations.require(conn, deps, org_id)
    row = await q.insert_project(
        conn,
        project_id=uuid.uuid4(),
        org_id=org_id,
        name=display_name(name),
        description=description,
    )
    await publish.project(conn, row)
    await record_audit(conn, actor, row, "CREATE")
    return row


async def update(
    conn: asyncpg.Connection,
    actor: Actor,
    project_id: uuid.UUID,
    *,
    name: str | None,
    description: str | None,
) -> Project:
    current = await get(conn, project_id, lock=True)
    row = await q.update_project(
        conn,
        project_id,
        name=display_name(name) if name else current.name,
        description=current.description if description is None else description,
    )
    await publish.project(conn, row)
    await record_audit(conn, actor, row, "UPDATE")
    return row


async def record_audit(conn: asyncpg.Connection, actor: Actor, row: Project, action: str) -> None:
    await audit.record(
        conn,
        producer=publish.SOURCE,
        actor=actor,
        organization_id=row.organization_id,
        action=action,
        target_type="PROJECT",
        target_id=row.id,
        target_name=row.name,
        project_id=row.id,
        change={"name": row.name, "description": row.description},
    )
