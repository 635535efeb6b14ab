"""Services of every kind: validated specs, unique names per environment, a stage each.

A service must be one its environment's cluster can run (``domain.capabilities``): a kind, a
database engine and version the cluster offers; a database without a version gets the newest one
the cluster offers for its engine.

A container's or job's image registry is a target the user chose: saving one the platform does
not connect to (loopback, private, link-local, metadata... unless allow-listed, or the platform's
own registry) is refused early with a clear 422; the deployer checks it again when it pulls.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
from pydantic import ValidationError

from slipway_catalog.db import queries as q
from slipway_catalog.domain import capabilities, service_specs
from slipway_catalog.domain.capabilities import Capabilities
from slipway_catalog.domain.clusters import Cluster
from slipway_catalog.domain.services import Service
from slipway_catalog.domain.specs.common import ImageSource
from slipway_catalog.domain.stages import default_stage
from slipway_catalog.usecases import clusters, environments, publish
from slipway_catalog.usecases.deps import Deps
from slipway_libs import audit
from slipway_libs.actor import Actor
from slipway_libs.egress import TargetNotAllowed, TargetUnresolved
from slipway_libs.errors import InvalidInput, Missing
from slipway_libs.registries import builds_of_another, check_registry

_RESOLVE_AT_SAVE_S = 5.0


class SpecInvalid(InvalidInput):
    """422 with every failing field path, as the API's validation errors have."""

    def __init__(self, exc: ValidationError) -> None:
        super().__init__("VALIDATION_ERROR", "The service is invalid.")
        self.details = [
            {"path": ".".join(str(p) for p in e["loc"]), "type": e["type"], "message": e["msg"]}
            for e in exc.errors()
        ]


async def get(conn: asyncpg.Connection, service_id: uuid.UUID, *, lock: bool = False) -> Service:
    row = await q.service(conn, service_id, lock=lock)
    if row is None:
        raise Missing("SERVICE_NOT_FOUND", "No such service.")
    return row


def _parse(data: dict[str, Any]) -> Any:
    try:
        return service_specs.parse_spec(data)
    except ValidationError as exc:
        raise SpecInvalid(exc) from None


async def _ensure_image_allowed(
    deps: Deps, organization_id: uuid.UUID, image: ImageSource | None
) -> None:
    """422 unless the platform may pull ``image``: not another organization's builds, from a
    registry the platform connects to. A name that does not resolve now is accepted: it may
    later, and the deployer checks again before it pulls."""
    if image is None:
        return
    registry = image.registry
    reference = f"{registry}/{image.name}"
    if builds_of_another(
        reference, platform_registry=deps.platform_registry, organization_id=str(organization_id)
    ):
        raise InvalidInput(
            "TARGET_NOT_ALLOWED",
            "The platform registry's slipway/<organization>/ images are that organization's only.",
            field="image.name",
        )
    try:
        async with asyncio.timeout(_RESOLVE_AT_SAVE_S):
            await check_registry(
                registry, platform_registry=deps.platform_registry, policy=deps.egress
            )
    except TargetNotAllowed as refused:
        raise InvalidInput(
            "TARGET_NOT_ALLOWED", f"The image registry {refused.message}.", field="image.registry"
        ) from None
    except (TargetUnresolved, TimeoutError):
        pass


async def create(
    conn: asyncpg.Connection, deps: Deps, actor: Actor, env_id: uuid.UUID, data: dict[str, Any]
) -> Service:
    env = await environments.get(conn, env_id, lock=True)
    cluster, offer = await _cluster_of(conn, deps, env.cluster_id)
    spec = _parse(dict(capabilities.with_default_version(data, offer)))
    capabilities.check_service(cluster, offer, spec.model_dump(mode="json"))
    await _ensure_image_allowed(deps, env.organization_id, service_specs.image_source(spec))
    stage_id = await _default_stage(conn, env_id, spec.kind)
    row = await q.insert_service(
        conn,
        service_id=uuid.uuid4(),
        org_id=env.organization_id,
        project_id=env.project_id,
        env_id=env_id,
        name=spec.name,
        kind=spec.kind,
        spec=spec.model_dump(mode="json"),
        stage_id=stage_id,
    )
    await publish.service(conn, row)
    await record_audit(conn, actor, row, "CREATE")
    return row


async def _cluster_of(
    conn: asyncpg.Connection, deps: Deps, cluster_id: uuid.UUID
) -> tuple[Cluster, Capabilities]:
    """The environment's cluster (it outlives its environments: deleting it is refused while
    one runs there) and what it can run."""
    cluster = await clusters.get(conn, cluster_id)
    return cluster, clusters.capabilities(deps, cluster)


async def _default_stage(
    conn: asyncpg.Connection, env_id: uuid.UUID, kind: str
) -> uuid.UUID | None:
    stages = await q.stages(conn, env_id)
    wanted = default_stage(kind)
    for stage in stages:
        if stage.name == wanted:
            return stage.id
    return stages[-1].id if stages else None


async def update(
    conn: asyncpg.Connection,
    deps: Deps,
    actor: Actor,
    service_id: uuid.UUID,
    patch: dict[str, Any],
) -> Service:
    current = await get(conn, service_id, lock=True)
    if "kind" in patch and patch["kind"] != current.kind:
        raise InvalidInput("KIND_IMMUTABLE", "A service's kind cannot change.", field="kind")
    stored = _parse(current.spec)
    try:
        spec = service_specs.merge_update(stored, patch)
    except ValidationError as exc:
        raise SpecInvalid(exc) from None
    if getattr(spec, "version", None) != getattr(stored, "version", None):
        # a database's new version must be one its cluster runs; an unrelated edit of a
        # service saved before capabilities were checked is not refused
        env = await environments.get(conn, current.environment_id)
        cluster, offer = await _cluster_of(conn, deps, env.cluster_id)
        capabilities.check_service(cluster, offer, spec.model_dump(mode="json"))
    image = service_specs.image_source(spec)
    if image != service_specs.image_source(stored):  # an unrelated edit is not refused
        await _ensure_image_allowed(deps, current.organization_id, image)
    row = await q.update_service(
        conn,
        service_id,
        name=spec.name,
        spec=spec.model_dump(mode="json"),
        stage_id=current.stage_id,
    )
    await publish.service(conn, row)
    await record_audit(conn, actor, row, "UPDATE")
    return row


async def move(
    conn: asyncpg.Connection, actor: Actor, service_id: uuid.UUID, stage_id: uuid.UUID
) -> Service:
    current = await get(conn, service_id, lock=True)
    stage = await q.stage(conn, stage_id)
    if stage is None or stage.environment_id != current.environment_id:
        raise InvalidInput(
            "STAGE_NOT_FOUND", "No such stage in the service's environment.", field="stage_id"
        )
    row = await q.update_service(
        conn, service_id, name=current.name, spec=current.spec, stage_id=stage_id
    )
    await publish.service(conn, row)
    await record_audit(conn, actor, row, "UPDATE")
    return row


async def record_audit(conn: asyncpg.Connection, actor: Actor, row: Service, action: str) -> None:
    target = {
        "application": "APPLICATION",
        "container": "CONTAINER",
        "database": "DATABASE",
        "cronjob": "JOB",
        "lifecycle": "JOB",
        "helm": "HELM",
    }[row.kind]
    await audit.record(
        conn,
        producer=publish.SOURCE,
        actor=actor,
        organization_id=row.organization_id,
        action=action,
        target_type=target,
        target_id=row.id,
        target_name=row.name,
        project_id=row.project_id,
        environment_id=row.environment_id,
        change=row.spec if action != "DELETE" else None,
    )
