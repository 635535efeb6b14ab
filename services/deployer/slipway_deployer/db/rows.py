"""How a row of the deployer's tables becomes a typed value: one function per model, used by
``queries`` only, so no ``asyncpg.Record`` leaves the ``db`` package. Read models that are no
domain concept (only a view of some columns) are defined here too."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from slipway_deployer.domain.catalog import (
    CatalogCluster,
    CatalogEnvironment,
    CatalogService,
    CatalogStage,
    CatalogVariable,
)
from slipway_deployer.domain.deployments import (
    Deployment,
    EnvironmentStatus,
    ServiceRun,
    ServiceStatus,
    StageRun,
)
from slipway_deployer.domain.running import DatabaseInstance, JobOutputs, JobRun


@dataclass(frozen=True, slots=True, kw_only=True)
class DeploymentOwner:
    """Which environment and organization a deployment belongs to (the gateway's index)."""

    id: uuid.UUID
    environment_id: uuid.UUID
    organization_id: uuid.UUID


def _dict(value: Any) -> dict[str, Any] | None:
    return None if value is None else dict(value)


def deployment(row: asyncpg.Record) -> Deployment:
    return Deployment(
        id=row["id"],
        seq=row["seq"],
        organization_id=row["organization_id"],
        project_id=row["project_id"],
        environment_id=row["environment_id"],
        action=row["action"],
        service_ids=tuple(row["service_ids"]),
        version=row["version"],
        trigger=row["trigger"],
        rollback_of=row["rollback_of"],
        requested_by=_dict(row["requested_by"]),
        status=row["status"],
        reason=row["reason"],
        message=row["message"],
        snapshot=_dict(row["snapshot"]),
        trace_carrier=_dict(row["trace_carrier"]),
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        heartbeat_at=row["heartbeat_at"],
        planned_at=row["planned_at"],
    )


def deployment_owner(row: asyncpg.Record) -> DeploymentOwner:
    return DeploymentOwner(
        id=row["id"], environment_id=row["environment_id"], organization_id=row["organization_id"]
    )


def stage_run(row: asyncpg.Record) -> StageRun:
    return StageRun(
        deployment_id=row["deployment_id"],
        position=row["position"],
        stage_id=row["stage_id"],
        name=row["name"],
        status=row["status"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
    )


def service_run(row: asyncpg.Record) -> ServiceRun:
    return ServiceRun(
        deployment_id=row["deployment_id"],
        service_id=row["service_id"],
        position=row["position"],
        name=row["name"],
        kind=row["kind"],
        status=row["status"],
        build_id=row["build_id"],
        build_status=row["build_status"],
        image=row["image"],
        commit=row["commit"],
        reason=row["reason"],
        message=row["message"],
        steps=dict(row["steps"] or {}),
        started_at=row["started_at"],
        finished_at=row["finished_at"],
    )


def environment_status(row: asyncpg.Record) -> EnvironmentStatus:
    return EnvironmentStatus(
        environment_id=row["environment_id"],
        organization_id=row["organization_id"],
        state=row["state"],
        last_action=row["last_action"],
        last_deployment_id=row["last_deployment_id"],
        updated_at=row["updated_at"],
    )


def service_status(row: asyncpg.Record) -> ServiceStatus:
    return ServiceStatus(
        service_id=row["service_id"],
        environment_id=row["environment_id"],
        organization_id=row["organization_id"],
        state=row["state"],
        last_action=row["last_action"],
        running_status=row["running_status"],
        urls=tuple(row["urls"] or ()),
        message=row["message"],
        deployed_config=row["deployed_config"],
        deployed_image=row["deployed_image"],
        last_deployment_id=row["last_deployment_id"],
        updated_at=row["updated_at"],
    )


def catalog_cluster(row: asyncpg.Record) -> CatalogCluster:
    return CatalogCluster(
        id=row["id"],
        organization_id=row["organization_id"],
        name=row["name"],
        kind=row["kind"],
        api_url=row["api_url"],
        credentials_sealed=row["credentials_sealed"],
        capabilities=row["capabilities"],
        settings=row["settings"],
        deleted=row["deleted"],
        version=row["version"],
    )


def catalog_environment(row: asyncpg.Record) -> CatalogEnvironment:
    return CatalogEnvironment(
        id=row["id"],
        organization_id=row["organization_id"],
        project_id=row["project_id"],
        name=row["name"],
        mode=row["mode"],
        cluster_id=row["cluster_id"],
        deleted=row["deleted"],
        version=row["version"],
    )


def catalog_service(row: asyncpg.Record) -> CatalogService:
    return CatalogService(
        id=row["id"],
        organization_id=row["organization_id"],
        project_id=row["project_id"],
        environment_id=row["environment_id"],
        name=row["name"],
        kind=row["kind"],
        spec=dict(row["spec"]),
        stage_id=row["stage_id"],
        deleted=row["deleted"],
        version=row["version"],
    )


def catalog_stage(row: asyncpg.Record) -> CatalogStage:
    return CatalogStage(
        id=row["id"],
        organization_id=row["organization_id"],
        environment_id=row["environment_id"],
        name=row["name"],
        position=row["position"],
        deleted=row["deleted"],
        version=row["version"],
    )


def catalog_variable(row: asyncpg.Record) -> CatalogVariable:
    return CatalogVariable(
        id=row["id"],
        organization_id=row["organization_id"],
        project_id=row["project_id"],
        environment_id=row["environment_id"],
        scope=row["scope"],
        parent_id=row["parent_id"],
        key=row["key"],
        kind=row["kind"],
        value=row["value"],
        value_sealed=row["value_sealed"],
        is_secret=row["is_secret"],
        mount_path=row["mount_path"],
        deleted=row["deleted"],
        version=row["version"],
    )


def database_instance(row: asyncpg.Record) -> DatabaseInstance:
    return DatabaseInstance(
        service_id=row["service_id"],
        organization_id=row["organization_id"],
        environment_id=row["environment_id"],
        engine=row["engine"],
        host=row["host"],
        port=row["port"],
        db_user=row["db_user"],
        db_name=row["db_name"],
        password_sealed=bytes(row["password_sealed"]),
        version=row["version"],
        deleted=row["deleted"],
    )


def job_outputs(row: asyncpg.Record) -> JobOutputs:
    return JobOutputs(
        environment_id=row["environment_id"],
        service_id=row["service_id"],
        outputs_sealed=bytes(row["outputs_sealed"]),
        updated_at=row["updated_at"],
    )


def job_run(row: asyncpg.Record) -> JobRun:
    return JobRun(
        id=row["id"],
        seq=row["seq"],
        service_id=row["service_id"],
        environment_id=row["environment_id"],
        organization_id=row["organization_id"],
        trigger=row["trigger"],
        scheduled_at=row["scheduled_at"],
        requested_by=_dict(row["requested_by"]),
        status=row["status"],
        exit_code=row["exit_code"],
        message=row["message"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
    )
