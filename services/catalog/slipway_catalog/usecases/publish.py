"""From rows to the catalog's full-state events (event-carried state transfer), via the outbox."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import asyncpg

from slipway_catalog.db import queries as q
from slipway_catalog.domain import capabilities as capability_rules
from slipway_catalog.domain import clusters
from slipway_catalog.domain.clusters import Cluster
from slipway_catalog.domain.environments import Environment
from slipway_catalog.domain.projects import Project
from slipway_catalog.domain.rules import SavedRule
from slipway_catalog.domain.services import Service
from slipway_catalog.domain.stages import Stage
from slipway_catalog.domain.variables import Variable
from slipway_catalog.usecases.deps import Deps
from slipway_contracts import EventPayload
from slipway_contracts.events import catalog as ev
from slipway_libs import changes, outbox
from slipway_libs.crypto import Sealer

SOURCE = "catalog"


async def _publish(
    conn: asyncpg.Connection, payload: EventPayload, *, key: uuid.UUID, org_id: uuid.UUID
) -> None:
    if payload.topic == ev.PROJECT_TOPIC:  # keyed by project: the project's next revision
        revision = await q.next_revision(conn, key, org_id)
        payload = payload.model_copy(update={"revision": revision})
        changes.note_revision(key, revision)
    await outbox.publish(
        conn, payload, subject=str(key), source=SOURCE, organization_id=org_id, announce=True
    )


def cluster_state(
    row: Cluster,
    *,
    access_sealed: str | None = None,
    capabilities: dict[str, Any] | None = None,
) -> ev.ClusterChanged:
    """``access_sealed``: for the deployer's copy only (``cluster`` below), never the index's."""
    return ev.ClusterChanged(
        cluster_id=row.id,
        organization_id=row.organization_id,
        name=row.name,
        kind=row.kind,
        api_url=row.api_url,
        deleted=row.deleted_at is not None,
        version=row.version,
        credentials_sealed=access_sealed,
        capabilities=capabilities,
        settings={},
    )


def project_state(project: Project) -> ev.ProjectChanged:
    return ev.ProjectChanged(
        project_id=project.id,
        organization_id=project.organization_id,
        name=project.name,
        description=project.description,
        deleted=project.deleted_at is not None,
        version=project.version,
    )


def environment_state(row: Environment) -> ev.EnvironmentChanged:
    return ev.EnvironmentChanged(
        environment_id=row.id,
        organization_id=row.organization_id,
        project_id=row.project_id,
        name=row.name,
        mode=row.mode,
        cluster_id=row.cluster_id,
        cloned_from=row.cloned_from,
        deleted=row.deleted_at is not None,
        version=row.version,
    )


def service_state(row: Service) -> ev.ServiceChanged:
    return ev.ServiceChanged(
        service_id=row.id,
        organization_id=row.organization_id,
        project_id=row.project_id,
        environment_id=row.environment_id,
        name=row.name,
        kind=row.kind,
        spec=row.spec,
        stage_id=row.stage_id,
        deleted=row.deleted_at is not None,
        version=row.version,
    )


def stage_state(row: Stage) -> ev.StageChanged:
    return ev.StageChanged(
        stage_id=row.id,
        organization_id=row.organization_id,
        environment_id=row.environment_id,
        name=row.name,
        position=row.position,
        deleted=row.deleted_at is not None,
        version=row.version,
    )


def rule_state(row: SavedRule) -> ev.DeploymentRuleChanged:
    return ev.DeploymentRuleChanged(
        environment_id=row.environment_id,
        organization_id=row.organization_id,
        auto_stop=row.auto_stop,
        auto_start=row.auto_start,
        timezone=row.timezone,
        weekdays=list(row.weekdays),
        start_time=row.start_time,
        stop_time=row.stop_time,
        auto_preview=row.auto_preview,
        preview_ttl_hours=row.preview_ttl_hours,
        version=row.version,
    )


def variable_state(row: Variable, transport: Sealer, at_rest: Sealer) -> ev.VariableChanged:
    sealed = None
    if row.is_secret and row.deleted_at is None:
        clear = at_rest.open(row.sealed(), aad=row.id.bytes)
        sealed = base64.b64encode(transport.seal(clear, aad=row.id.bytes)).decode()
    return ev.VariableChanged(
        variable_id=row.id,
        organization_id=row.organization_id,
        scope=row.scope,
        parent_id=row.parent_id,
        project_id=row.project_id,
        environment_id=row.environment_id,
        key=row.key,
        kind=row.kind,
        value=None if row.is_secret else row.value,
        value_sealed=sealed,
        is_secret=row.is_secret,
        mount_path=row.mount_path,
        deleted=row.deleted_at is not None,
        version=row.version,
    )


async def cluster(conn: asyncpg.Connection, deps: Deps, row: Cluster) -> None:
    """The cluster's state with what the deployer connects with: the access read from the
    credentials sealed at rest, sealed again with the transport key (bound to the cluster)."""
    sealed = None
    if row.credentials_sealed is not None and row.deleted_at is None:
        opened = json.loads(deps.at_rest.open(row.credentials_sealed, aad=row.id.bytes))
        access = clusters.access(opened, api_url=row.api_url)
        clear = json.dumps(
            {
                "api_url": access.server.url,
                "token": access.token,
                "ca_cert": access.ca_pem,
                "insecure": access.insecure,
            }
        ).encode()
        sealed = base64.b64encode(deps.transport.seal(clear, aad=row.id.bytes)).decode()
    offer = capability_rules.of(row, local_offer=deps.local_offer)
    state = cluster_state(row, access_sealed=sealed, capabilities=offer.as_json())
    await _publish(conn, state, key=row.id, org_id=row.organization_id)


async def project(conn: asyncpg.Connection, project: Project) -> None:
    await _publish(conn, project_state(project), key=project.id, org_id=project.organization_id)


async def environment(conn: asyncpg.Connection, row: Environment) -> None:
    await _publish(conn, environment_state(row), key=row.project_id, org_id=row.organization_id)


async def service(conn: asyncpg.Connection, row: Service) -> None:
    await _publish(conn, service_state(row), key=row.project_id, org_id=row.organization_id)


async def stage(conn: asyncpg.Connection, row: Stage, project_id: uuid.UUID) -> None:
    await _publish(conn, stage_state(row), key=project_id, org_id=row.organization_id)


async def rule(conn: asyncpg.Connection, row: SavedRule, project_id: uuid.UUID) -> None:
    await _publish(conn, rule_state(row), key=project_id, org_id=row.organization_id)


async def variable(
    conn: asyncpg.Connection, row: Variable, *, transport: Sealer, at_rest: Sealer
) -> None:
    await _publish(
        conn,
        variable_state(row, transport, at_rest),
        key=row.project_id,
        org_id=row.organization_id,
    )


async def preview(conn: asyncpg.Connection, change: ev.PreviewChanged) -> None:
    """After the preview's own changes, in their transaction: it sums them up."""
    await _publish(conn, change, key=change.project_id, org_id=change.organization_id)
