"""Environments: a mode and a cluster (fixed at creation), default stages and rule; clone."""

from __future__ import annotations

import uuid

import asyncpg

from slipway_catalog.db import queries as q
from slipway_catalog.domain.clusters import Cluster
from slipway_catalog.domain.environments import Environment
from slipway_catalog.domain.names import display_name
from slipway_catalog.domain.projects import Project
from slipway_catalog.domain.stages import DEFAULT_STAGES
from slipway_catalog.usecases import projects, publish
from slipway_libs import audit
from slipway_libs.actor import Actor
from slipway_libs.errors import InvalidInput, Missing

CREATABLE_MODES = ("production", "staging", "development")


async def get(conn: asyncpg.Connection, env_id: uuid.UUID, *, lock: bool = False) -> Environment:
    row = await q.environment(conn, env_id, lock=lock)
    if row is None:
        raise Missing("ENVIRONMENT_NOT_FOUND", "No such environment.")
    return row


async def _cluster_of_org(
    conn: asyncpg.Connection, cluster_id: uuid.UUID, org_id: uuid.UUID
) -> Cluster:
    cluster = await q.cluster(conn, cluster_id)
    if cluster is None or cluster.organization_id != org_id:
        raise InvalidInput(
            "CLUSTER_NOT_FOUND", "No such cluster in this organization.", field="cluster_id"
        )
    return cluster


def _check_mode(mode: str, *, allowed: tuple[str, ...] = CREATABLE_MODES) -> str:
    if mode not in allowed:
        raise InvalidInput(
            "INVALID_MODE", f"Mode must be one of {', '.join(allowed)}.", field="mode"
        )
    return mode


async def create(
    conn: asyncpg.Connection,
    actor: Actor,
    project_id: uuid.UUID,
    *,
    name: str,
    mode: str,
    cluster_id: uuid.UUID,
) -> Environment:
    project = await projects.get(conn, project_id, lock=True)
    await _cluster_of_org(conn, cluster_id, project.organization_id)
    env = await _insert(conn, project, name=name, mode=_check_mode(mode), cluster_id=cluster_id)
    for position, stage_name in enumerate(DEFAULT_STAGES):
        stage = await q.insert_stage(
            conn,
            stage_id=uuid.uuid4(),
            org_id=env.organization_id,
            env_id=env.id,
            name=stage_name,
            position=position,
        )
        await publish.stage(conn, stage, project_id)
    rule = await q.upsert_rule(conn, env_id=env.id, org_id=env.organization_id, rule=DEFAULT_RULE)
    await publish.rule(conn, rule, project_id)
    await record_audit(conn, actor, env, "CREATE")
    return env


DEFAULT_RULE = {
    "auto_stop": False,
    "auto_start": False,
    "timezone": "UTC",
    "weekdays": [],
    "start_time": None,
    "stop_time": None,
    "auto_preview": False,
    "preview_ttl_hours": None,
}


async def _insert(
    conn: asyncpg.Connection,
    project: Project,
    *,
    name: str,
    mode: str,
    cluster_id: uuid.UUID,
    cloned_from: uuid.UUID | None = None,
    env_id: uuid.UUID | None = None,
) -> Environment:
    env = await q.insert_environment(
        conn,
        env_id=env_id or uuid.uuid4(),
        org_id=project.organization_id,
        project_id=project.id,
        name=display_name(name),
        mode=mode,
        cluster_id=cluster_id,
        cloned_from=cloned_from,
    )
    await publish.environment(conn, env)
    return env


async def update(
    conn: asyncpg.Connection,
    actor: Actor,
    env_id: uuid.UUID,
    *,
    name: str | None,
    mode: str | None,
    cluster_id: uuid.UUID | None,
) -> Environment:
    current = await get(conn, env_id, lock=True)
    if cluster_id is not None and cluster_id != current.cluster_id:
        raise InvalidInput(
            "CLUSTER_IMMUTABLE",
            "An environment's cluster cannot change; clone it onto the other cluster.",
            field="cluster_id",
        )
    new_mode = (
        current.mode
        if mode is None
        else _check_mode(
            mode,
            allowed=(*CREATABLE_MODES, "preview") if current.mode == "preview" else CREATABLE_MODES,
        )
    )
    env = await q.update_environment(
        conn, env_id, name=display_name(name) if name else current.name, mode=new_mode
    )
    await publish.environment(conn, env)
    await record_audit(conn, actor, env, "UPDATE")
    return env


async def record_audit(
    conn: asyncpg.Connection, actor: Actor, env: Environment, action: str
) -> None:
    await audit.record(
        conn,
        producer=publish.SOURCE,
        actor=actor,
        organization_id=env.organization_id,
        action=action,
        target_type="ENVIRONMENT",
        target_id=env.id,
        target_name=env.name,
        project_id=env.project_id,
        environment_id=env.id,
        change={"name": env.name, "mode": env.mode, "cluster_id": str(env.cluster_id)},
    )
