"""Snapshots: the configuration one deployment acts on, frozen when it starts (services, stages,
variables with secrets still sealed, images), from the deployer's copy of the catalog."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from slipway_deployer.db import queries as q
from slipway_deployer.domain import plan as p
from slipway_deployer.domain import state_machine as sm
from slipway_deployer.domain.catalog import CatalogEnvironment, CatalogService, CatalogVariable
from slipway_deployer.domain.deployments import Deployment

A = sm.Action


async def build(conn: asyncpg.Connection, row: Deployment) -> dict[str, Any]:
    """What a request acts on, frozen when it starts."""
    env = await q.environment(conn, row.environment_id)
    if env is None:
        raise LookupError("the environment is not in the deployer's catalog")
    all_services = [service_entry(s) for s in await q.services_of(conn, env.id)]
    services = p.in_scope(all_services, row.service_ids)
    stages = [
        {"id": str(s.id), "name": s.name, "position": s.position}
        for s in await q.stages_of(conn, env.id)
    ]
    parents = [env.id, *(uuid.UUID(s["id"]) for s in all_services)]
    variables = [
        variable_entry(v) for v in await q.variables_visible(conn, env.project_id, parents)
    ]
    images = await deployed_images(conn, env.id) if row.action != A.DEPLOY else {}
    return {
        "environment": environment_entry(env),
        "services": services,
        "all_services": all_services,
        "stages": stages,
        "variables": variables,
        "images": images,
    }


def service_entry(row: CatalogService) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "name": row.name,
        "kind": row.kind,
        "spec": row.spec,
        "stage_id": str(row.stage_id) if row.stage_id else None,
        "version": row.version,
    }


def variable_entry(row: CatalogVariable) -> dict[str, Any]:
    return {
        "key": row.key,
        "scope": row.scope,
        "kind": row.kind,
        "value": row.value,
        "value_sealed": row.value_sealed,
        "is_secret": row.is_secret,
        "mount_path": row.mount_path,
        "version": row.version,
        "id": str(row.id),
        "parent_id": str(row.parent_id),
    }


def environment_entry(env: CatalogEnvironment) -> dict[str, Any]:
    return {
        "id": str(env.id),
        "name": env.name,
        "project_id": str(env.project_id),
        "organization_id": str(env.organization_id),
    }


async def deployed_images(conn: asyncpg.Connection, env_id: uuid.UUID) -> dict[str, str]:
    """The image each service runs (jobs that run on stop or delete use it)."""
    return {
        str(s.service_id): s.deployed_image
        for s in await q.service_statuses(conn, env_id)
        if s.deployed_image
    }


async def teardown(
    conn: asyncpg.Connection, env: CatalogEnvironment, services: list[CatalogService]
) -> dict[str, Any]:
    """For deleting what still runs of services the catalog deleted."""
    entries = [service_entry(s) for s in services]
    return {
        "environment": environment_entry(env),
        "services": entries,
        "all_services": entries,
        "stages": [],
        "variables": [],
        "images": await deployed_images(conn, env.id),
    }
