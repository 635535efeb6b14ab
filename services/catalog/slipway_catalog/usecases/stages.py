"""Deployment stages of an environment: create, rename, reorder, delete (when empty)."""

from __future__ import annotations

import uuid

import asyncpg

from slipway_catalog.db import queries as q
from slipway_catalog.domain.environments import Environment
from slipway_catalog.domain.names import display_name
from slipway_catalog.domain.stages import Stage, reorder
from slipway_catalog.usecases import environments, publish
from slipway_libs import audit
from slipway_libs.actor import Actor
from slipway_libs.errors import Clash, InvalidInput, Missing


async def get(conn: asyncpg.Connection, stage_id: uuid.UUID) -> Stage:
    row = await q.stage(conn, stage_id)
    if row is None:
        raise Missing("STAGE_NOT_FOUND", "No such stage.")
    return row


async def create(
    conn: asyncpg.Connection, actor: Actor, env_id: uuid.UUID, *, name: str, position: int | None
) -> Stage:
    env = await environments.get(conn, env_id, lock=True)
    current = await q.stages(conn, env_id)
    at = len(current) if position is None else max(0, min(position, len(current)))
    row = await q.insert_stage(
        conn,
        stage_id=uuid.uuid4(),
        org_id=env.organization_id,
        env_id=env_id,
        name=display_name(name, max_length=60),
        position=at,
    )
    ids = [s.id for s in current]
    ids.insert(at, row.id)
    await _renumber(conn, env, ids, changed=row.id)
    await _audit(conn, actor, env, row, "CREATE")
    return await get(conn, row.id)


async def rename(
    conn: asyncpg.Connection, actor: Actor, stage_id: uuid.UUID, *, name: str
) -> Stage:
    stage = await get(conn, stage_id)
    env = await environments.get(conn, stage.environment_id, lock=True)
    row = await q.update_stage(
        conn, stage_id, name=display_name(name, max_length=60), position=stage.position
    )
    await publish.stage(conn, row, env.project_id)
    await _audit(conn, actor, env, row, "UPDATE")
    return row


async def set_order(
    conn: asyncpg.Connection, actor: Actor, env_id: uuid.UUID, stage_ids: list[uuid.UUID]
) -> list[Stage]:
    env = await environments.get(conn, env_id, lock=True)
    current = [s.id for s in await q.stages(conn, env_id)]
    try:
        wanted = reorder([str(i) for i in current], [str(i) for i in stage_ids])
    except ValueError as exc:
        raise InvalidInput("INVALID_STAGE_ORDER", str(exc), field="stage_ids") from None
    await _renumber(conn, env, [uuid.UUID(i) for i in wanted])
    await audit.record(
        conn,
        producer=publish.SOURCE,
        actor=actor,
        organization_id=env.organization_id,
        action="UPDATE",
        target_type="DEPLOYMENT_STAGE",
        target_id=env_id,
        project_id=env.project_id,
        environment_id=env_id,
        change={"order": wanted},
    )
    return await q.stages(conn, env_id)


async def delete(conn: asyncpg.Connection, actor: Actor, stage_id: uuid.UUID) -> None:
    stage = await get(conn, stage_id)
    env = await environments.get(conn, stage.environment_id, lock=True)
    if await q.services_in_stage(conn, stage_id):
        raise Clash("STAGE_NOT_EMPTY", "Move the stage's services to another stage first.")
    row = await q.delete_stage(conn, stage_id)
    await publish.stage(conn, row, env.project_id)
    remaining = [s.id for s in await q.stages(conn, env.id)]
    await _renumber(conn, env, remaining)
    await _audit(conn, actor, env, row, "DELETE")


async def _renumber(
    conn: asyncpg.Connection,
    env: Environment,
    ids: list[uuid.UUID],
    *,
    changed: uuid.UUID | None = None,
) -> None:
    # positions are renumbered 0..n-1 and each stage whose position moved publishes its state
    by_id = {s.id: s for s in await q.stages(conn, env.id)}
    for position, stage_id in enumerate(ids):
        stage = by_id[stage_id]
        if stage.position != position or stage_id == changed:
            row = await q.update_stage(conn, stage_id, name=stage.name, position=position)
            await publish.stage(conn, row, env.project_id)


async def _audit(
    conn: asyncpg.Connection, actor: Actor, env: Environment, stage: Stage, action: str
) -> None:
    await audit.record(
        conn,
        producer=publish.SOURCE,
        actor=actor,
        organization_id=env.organization_id,
        action=action,
        target_type="DEPLOYMENT_STAGE",
        target_id=stage.id,
        target_name=stage.name,
        project_id=env.project_id,
        environment_id=env.id,
        change={"position": stage.position},
    )
