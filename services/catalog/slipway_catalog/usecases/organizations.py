"""The catalog's view of organizations, from identity's events; each gets the local cluster."""

from __future__ import annotations

import uuid

import asyncpg

from slipway_catalog.db import queries as q
from slipway_catalog.usecases import publish
from slipway_catalog.usecases.deps import Deps
from slipway_contracts import Envelope
from slipway_libs import audit
from slipway_libs.actor import SYSTEM
from slipway_libs.errors import Missing

LOCAL_CLUSTER_NAME = "local"


async def on_created(conn: asyncpg.Connection, deps: Deps, envelope: Envelope) -> None:
    org_id = uuid.UUID(str(envelope.data["organization_id"]))
    if await q.upsert_organization(conn, org_id, str(envelope.data["name"])) and (
        deps.local_runtime
    ):
        await register_local_cluster(conn, deps, org_id)


async def on_deleted(conn: asyncpg.Connection, envelope: Envelope) -> None:
    await q.delete_organization(conn, uuid.UUID(str(envelope.data["organization_id"])))


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
        await audit.record(
            conn,
            producer=publish.SOURCE,
            actor=SYSTEM,
            organization_id=org_id,
            action="CREATE",
            target_type="CLUSTER",
            target_id=row.id,
            target_name=row.name,
            change={"kind": "local"},
        )


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
