"""Custom roles: per-project grants by environment mode, per-cluster grants."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from slipway_contracts.events.identity import ClusterGrant, ProjectGrant
from slipway_identity.db import queries as q
from slipway_identity.domain.accounts import clean_name
from slipway_identity.domain.roles import BUILTIN_ROLES, CustomRole
from slipway_identity.usecases import access
from slipway_identity.usecases.deps import SOURCE
from slipway_identity.usecases.organizations import get as get_org
from slipway_libs import audit
from slipway_libs.actor import Actor
from slipway_libs.errors import Clash, Missing


def _not_found() -> Missing:
    return Missing("ROLE_NOT_FOUND", "No such custom role.")


def _grants(
    clusters: list[ClusterGrant], projects: list[ProjectGrant]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return (
        [c.model_dump(mode="json") for c in clusters],
        [p.model_dump(mode="json") for p in projects],
    )


async def create(
    conn: asyncpg.Connection,
    actor: Actor,
    org_id: uuid.UUID,
    *,
    name: str,
    description: str,
    clusters: list[ClusterGrant],
    projects: list[ProjectGrant],
) -> CustomRole:
    await get_org(conn, org_id)
    name = clean_name(name, field="name", max_length=60)
    if name.lower() in BUILTIN_ROLES:
        raise Clash("ROLE_NAME_TAKEN", "A built-in role has this name.", field="name")
    cluster_rows, project_rows = _grants(clusters, projects)
    row = await q.insert_custom_role(
        conn,
        role_id=uuid.uuid4(),
        org_id=org_id,
        name=name,
        description=description.strip()[:500],
        clusters=cluster_rows,
        projects=project_rows,
    )
    await access.custom_role_changed(conn, row)
    await audit.record(
        conn,
        producer=SOURCE,
        actor=actor,
        organization_id=org_id,
        action="CREATE",
        target_type="CUSTOM_ROLE",
        target_id=row.id,
        target_name=name,
        change={"clusters": cluster_rows, "projects": project_rows},
    )
    return row


async def get(conn: asyncpg.Connection, org_id: uuid.UUID, role_id: uuid.UUID) -> CustomRole:
    row = await q.custom_role(conn, org_id, role_id)
    if row is None:
        raise _not_found()
    return row


async def update(
    conn: asyncpg.Connection,
    actor: Actor,
    org_id: uuid.UUID,
    role_id: uuid.UUID,
    *,
    name: str | None,
    description: str | None,
    clusters: list[ClusterGrant] | None,
    projects: list[ProjectGrant] | None,
) -> CustomRole:
    current = await get(conn, org_id, role_id)
    cluster_rows, project_rows = _grants(clusters or [], projects or [])
    row = await q.update_custom_role(
        conn,
        org_id=org_id,
        role_id=role_id,
        name=clean_name(name, field="name", max_length=60) if name else current.name,
        description=description if description is not None else current.description,
        clusters=cluster_rows if clusters is not None else current.clusters,
        projects=project_rows if projects is not None else current.projects,
    )
    assert row is not None
    await access.custom_role_changed(conn, row)
    await audit.record(
        conn,
        producer=SOURCE,
        actor=actor,
        organization_id=org_id,
        action="UPDATE",
        target_type="CUSTOM_ROLE",
        target_id=role_id,
        target_name=row.name,
        change={"clusters": row.clusters, "projects": row.projects},
    )
    return row


async def delete(
    conn: asyncpg.Connection, actor: Actor, org_id: uuid.UUID, role_id: uuid.UUID
) -> None:
    await get(conn, org_id, role_id)
    if await q.members_with_custom_role(conn, role_id):
        raise Clash("ROLE_IN_USE", "Members still have this role; change their role first.")
    row = await q.delete_custom_role(conn, org_id, role_id)
    assert row is not None
    await access.custom_role_changed(conn, row)
    await audit.record(
        conn,
        producer=SOURCE,
        actor=actor,
        organization_id=org_id,
        action="DELETE",
        target_type="CUSTOM_ROLE",
        target_id=role_id,
        target_name=row.name,
    )
