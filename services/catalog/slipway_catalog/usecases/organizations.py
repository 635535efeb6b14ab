"""The catalog's view of organizations, from identity's events; each gets the local cluster."""

from __future__ import annotations

import uuid

import asyncpg
import structlog

from slipway_catalog.db import queries as q
from slipway_catalog.domain.clusters import ClusterIn
from slipway_catalog.usecases import cluster_records, publish
from slipway_catalog.usecases.deps import Deps
from slipway_contracts import Envelope
from slipway_libs.actor import SYSTEM
from slipway_libs.errors import Missing

log = structlog.get_logger(__name__)
LOCAL_CLUSTER_NAME = "local"


async def on_created(conn: asyncpg.Connection, deps: Deps, envelope: Envelope) -> None:
    org_id = uuid.UUID(str(envelope.data["organization_id"]))
    if await q.upsert_organization(conn, org_id, str(envelope.data["name"])) and (
        deps.local_runtime
    ):
        await register_local_cluster(conn, deps, org_id)
    if deps.bootstrap_cluster is not None:
        # here, not in ``require``: a request's transaction sees its own organization only
        # (row-level security), so only the event's can tell the first organization
        await register_bootstrap_cluster(conn, deps, org_id, deps.bootstrap_cluster)


async def on_deleted(conn: asyncpg.Connection, envelope: Envelope) -> None:
    await q.delete_organization(conn, uuid.UUID(str(envelope.data["organization_id"])))


async def register_bootstrap_cluster(
    conn: asyncpg.Connection, deps: Deps, org_id: uuid.UUID, cluster: ClusterIn
) -> None:
    """The platform's own Kubernetes cluster (``make up`` with the devstack's) for the first
    organization ever recorded here; nothing for later ones nor twice (the name is taken)."""
    if await q.first_organization(conn, org_id):
        row = await cluster_records.insert_self_managed(conn, deps, SYSTEM, org_id, cluster)
        if row is not None:
            log.info("cluster.bootstrap_registered", organization_id=str(org_id), name=row.name)


async def register_local_cluster(conn: asyncpg.Connection, deps: Deps, org_id: uuid.UUID) -> None:
    row = await q.insert_cluster(
        conn,
        cluster_id=uuid.uuid4(),
        org_id=org_id,
        name=LOCAL_CLUSTER_NAME,
        kind="local",
        api_url=None,
        sealed=None,
    )
    if row is not None:
        await publish.cluster(conn, deps, row)
        await cluster_records.record_change(conn, SYSTEM, row, "CREATE", {"kind": "local"})


async def require(conn: asyncpg.Connection, deps: Deps, org_id: uuid.UUID) -> None:
    """The organization, known here even before identity's event arrived.

    The gateway only forwards requests for organizations identity knows, so a request may come
    before ``OrganizationCreated`` does: the organization is recorded then (its name follows
    with the event) and gets its local cluster at once.
    """
    if await q.ensure_organization(conn, org_id):
        if deps.local_runtime:
            await register_local_cluster(conn, deps, org_id)
    elif not await q.organization_exists(conn, org_id):
        raise Missing("ORGANIZATION_NOT_FOUND", "No such organization.")
