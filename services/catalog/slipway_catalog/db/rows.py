"""How a row of the catalog's tables becomes a typed value: one function per model, used by
``queries`` only, so no ``asyncpg.Record`` leaves the ``db`` package."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from slipway_catalog.domain.clusters import Cluster
from slipway_catalog.domain.environments import Environment
from slipway_catalog.domain.projects import Project
from slipway_catalog.domain.rules import SavedRule
from slipway_catalog.domain.services import Service
from slipway_catalog.domain.stages import Stage
from slipway_catalog.domain.variables import Variable


@dataclass(frozen=True, slots=True, kw_only=True)
class SealedValue:
    """A value sealed at rest and the id it is bound to (its associated data): re-sealing
    every secret after a new key is put first reads only these."""

    owner_id: uuid.UUID
    sealed: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class DatabaseConnection:
    """A deployed database's connection (the deployer's ``DatabaseConnectionChanged``), its
    password sealed at rest with the service id as associated data."""

    service_id: uuid.UUID
    organization_id: uuid.UUID
    environment_id: uuid.UUID
    engine: str
    host: str
    port: int
    user: str
    database: str
    password_sealed: bytes
    version: int


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


def cluster(row: asyncpg.Record) -> Cluster:
    return Cluster(
        id=row["id"],
        organization_id=row["organization_id"],
        name=row["name"],
        kind=row["kind"],
        api_url=row["api_url"],
        credentials_sealed=_bytes(row["credentials_sealed"]),
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        deleted_at=row["deleted_at"],
    )


def stage(row: asyncpg.Record) -> Stage:
    return Stage(
        id=row["id"],
        organization_id=row["organization_id"],
        environment_id=row["environment_id"],
        name=row["name"],
        position=row["position"],
        version=row["version"],
        deleted_at=row["deleted_at"],
    )


def rule(row: asyncpg.Record) -> SavedRule:
    return SavedRule(
        environment_id=row["environment_id"],
        organization_id=row["organization_id"],
        auto_stop=row["auto_stop"],
        auto_start=row["auto_start"],
        timezone=row["timezone"],
        weekdays=tuple(row["weekdays"]),
        start_time=row["start_time"],
        stop_time=row["stop_time"],
        auto_preview=row["auto_preview"],
        preview_ttl_hours=row["preview_ttl_hours"],
        version=row["version"],
        updated_at=row["updated_at"],
    )


def database_connection(row: asyncpg.Record) -> DatabaseConnection:
    """A live (not deleted) connection: every value is there."""
    return DatabaseConnection(
        service_id=row["service_id"],
        organization_id=row["organization_id"],
        environment_id=row["environment_id"],
        engine=row["engine"],
        host=row["host"],
        port=row["port"],
        user=row["user"],
        database=row["database"],
        password_sealed=bytes(row["password_sealed"]),
        version=row["version"],
    )
