"""Cloning an environment: its services, stages, deployment rule and variables (secrets
included, re-sealed for their new ids) into a new name, mode and cluster — a cluster that can run
every one of its services (refused otherwise, naming the first it cannot)."""

from __future__ import annotations

import uuid

import asyncpg

from slipway_catalog.db import queries as q
from slipway_catalog.domain import capabilities
from slipway_catalog.domain.clusters import Cluster
from slipway_catalog.domain.environments import Environment
from slipway_catalog.usecases import clusters, environments, projects, publish
from slipway_catalog.usecases.deps import Deps
from slipway_libs import audit
from slipway_libs.actor import Actor

CLONE_MODES = ("production", "staging", "development", "preview")


async def clone(
    conn: asyncpg.Connection,
    deps: Deps,
    actor: Actor,
    source_id: uuid.UUID,
    *,
    name: str,
    mode: str | None,
    cluster_id: uuid.UUID | None,
    env_id: uuid.UUID | None = None,
) -> Environment:
    """``env_id``: the new environment's id when the caller chose it (a preview's)."""
    source = await environments.get(conn, source_id, lock=True)
    project = await projects.get(conn, source.project_id, lock=True)
    target_cluster = cluster_id or source.cluster_id
    cluster = await environments._cluster_of_org(conn, target_cluster, source.organization_id)
    if target_cluster != source.cluster_id:
        await _ensure_runnable(conn, deps, source, cluster)
    env = await environments._insert(
        conn,
        project,
        name=name,
        mode=environments._check_mode(mode or source.mode, allowed=CLONE_MODES),
        cluster_id=target_cluster,
        cloned_from=source_id,
        env_id=env_id,
    )
    stage_ids = await _stages(conn, source, env)
    service_ids = await _services(conn, source, env, stage_ids)
    await _rule(conn, source, env)
    await _variables(conn, deps, source_id, env, {source_id: env.id, **service_ids})
    await audit.record(
        conn,
        producer=publish.SOURCE,
        actor=actor,
        organization_id=env.organization_id,
        action="CLONE",
        target_type="ENVIRONMENT",
        target_id=env.id,
        target_name=env.name,
        project_id=env.project_id,
        environment_id=env.id,
        change={"cloned_from": str(source_id), "mode": env.mode},
    )
    return env


async def _ensure_runnable(
    conn: asyncpg.Connection, deps: Deps, source: Environment, cluster: Cluster
) -> None:
    """A clone onto another cluster copies services that cluster must be able to run; on the
    same cluster the services are those it was already given."""
    offer = clusters.capabilities(deps, cluster)
    for service in await q.services(conn, source.id):
        capabilities.check_service(cluster, offer, service.spec, named=True)


async def _stages(
    conn: asyncpg.Connection, source: Environment, env: Environment
) -> dict[uuid.UUID, uuid.UUID]:
    mapping = {}
    for stage in await q.stages(conn, source.id):
        row = await q.insert_stage(
            conn,
            stage_id=uuid.uuid4(),
            org_id=env.organization_id,
            env_id=env.id,
            name=stage.name,
            position=stage.position,
        )
        await publish.stage(conn, row, env.project_id)
        mapping[stage.id] = row.id
    return mapping


async def _services(
    conn: asyncpg.Connection,
    source: Environment,
    env: Environment,
    stage_ids: dict[uuid.UUID, uuid.UUID],
) -> dict[uuid.UUID, uuid.UUID]:
    mapping = {}
    for service in await q.services(conn, source.id):
        row = await q.insert_service(
            conn,
            service_id=uuid.uuid4(),
            org_id=env.organization_id,
            project_id=env.project_id,
            env_id=env.id,
            name=service.name,
            kind=service.kind,
            spec=service.spec,
            stage_id=stage_ids.get(service.stage_id) if service.stage_id else None,
        )
        await publish.service(conn, row)
        mapping[service.id] = row.id
    return mapping


async def _rule(conn: asyncpg.Connection, source: Environment, env: Environment) -> None:
    rule = await q.rule(conn, source.id)
    values = environments.DEFAULT_RULE if rule is None else rule.settings()
    row = await q.upsert_rule(conn, env_id=env.id, org_id=env.organization_id, rule=dict(values))
    await publish.rule(conn, row, env.project_id)


async def _variables(
    conn: asyncpg.Connection,
    deps: Deps,
    source_id: uuid.UUID,
    env: Environment,
    parents: dict[uuid.UUID, uuid.UUID],
) -> None:
    for old_parent, new_parent in parents.items():
        for variable in await q.variables_of_parent(conn, old_parent):
            new_id = uuid.uuid4()
            sealed = None
            if variable.is_secret:
                clear = deps.at_rest.open(variable.sealed(), aad=variable.id.bytes)
                sealed = deps.at_rest.seal(clear, aad=new_id.bytes)
            row = await q.insert_variable(
                conn,
                variable_id=new_id,
                org_id=env.organization_id,
                project_id=env.project_id,
                env_id=env.id,
                service_id=new_parent if variable.scope == "service" else None,
                scope=variable.scope,
                parent_id=new_parent,
                key=variable.key,
                kind=variable.kind,
                value=variable.value,
                sealed=sealed,
                is_secret=variable.is_secret,
                mount_path=variable.mount_path,
                description=variable.description,
            )
            await publish.variable(conn, row, transport=deps.transport, at_rest=deps.at_rest)
