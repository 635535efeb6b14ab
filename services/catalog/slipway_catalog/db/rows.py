"""How a row of the catalog's tables becomes a typed value: one function per model, used by
``queries`` only, so no ``asyncpg.Record`` leaves the ``db`` package."""

from __future__ import annotations

from typing import Any

import asyncpg

from slipway_catalog.domain.environments import Environment
from slipway_catalog.domain.projects import Project
from slipway_catalog.domain.services import Service
from slipway_catalog.domain.variables import Variable


def _bytes(value: Any) -> bytes | None:
    return None if value is None else bytes(value)


def project(row: asyncpg.Record) -> Project:
    return Project(
        id=row["id"],
        organization_id=row["organization_id"],
        name=row["name"],
        description=row["description"],
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        deleted_at=row["deleted_at"],
    )


def environment(row: asyncpg.Record) -> Environment:
    return Environment(
        id=row["id"],
        organization_id=row["organization_id"],
        project_id=row["project_id"],
        name=row["name"],
        mode=row["mode"],
        cluster_id=row["cluster_id"],
        cloned_from=row["cloned_from"],
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        deleted_at=row["deleted_at"],
    )


def service(row: asyncpg.Record) -> Service:
    return Service(
        id=row["id"],
        organization_id=row["organization_id"],
        project_id=row["project_id"],
        environment_id=row["environment_id"],
        name=row["name"],
        kind=row["kind"],
        spec=dict(row["spec"]),
        stage_id=row["stage_id"],
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        deleted_at=row["deleted_at"],
    )


def variable(row: asyncpg.Record) -> Variable:
    return Variable(
        id=row["id"],
        organization_id=row["organization_id"],
        project_id=row["project_id"],
        environment_id=row["environment_id"],
        service_id=row["service_id"],
        scope=row["scope"],
        parent_id=row["parent_id"],
        key=row["key"],
        kind=row["kind"],
        value=row["value"],
        value_sealed=_bytes(row["value_sealed"]),
        is_secret=row["is_secret"],
        mount_path=row["mount_path"],
        description=row["description"],
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        deleted_at=row["deleted_at"],
    )
