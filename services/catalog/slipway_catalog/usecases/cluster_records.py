"""A cluster's row, its event and its audit entry, written together: for the clusters users
register (``clusters``) and for the ones an organization is given (``organizations``). Both of
those modules import this one, so it imports neither."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg

from slipway_catalog.db import queries as q
from slipway_catalog.domain.clusters import Cluster, ClusterIn
from slipway_catalog.usecases import publish
from slipway_catalog.usecases.deps import Deps
from slipway_libs import audit
from slipway_libs.actor import Actor


async def insert_self_managed(
    conn: asyncpg.Connection,
    deps: Deps,
    actor: Actor,
    org_id: uuid.UUID,
    body: ClusterIn,
) -> Cluster | None:
    """The cluster, its credentials sealed to its id; None when the organization has a
    cluster of that name already."""
    cluster_id = uuid.uuid4()
    sealed = deps.at_rest.seal(json.dumps(body.credentials()).encode(), aad=cluster_id.bytes)
    row = await q.insert_cluster(
        conn,
        cluster_id=cluster_id,
        org_id=org_id,
        name=body.name,
        kind="self_managed",
        api_url=body.access().server.url,
        sealed=sealed,
    )
    if row is not None:
        await publish.cluster(conn, deps, row)
        await record_change(conn, actor, row, "CREATE", {"name": row.name, "api_url": row.api_url})
    return row


async def record_change(
    conn: asyncpg.Connection,
    actor: Actor,
    row: Cluster,
    action: str,
    change: dict[str, Any] | None,
) -> None:
    await audit.record(
        conn,
        producer=publish.SOURCE,
        actor=actor,
        organization_id=row.organization_id,
        action=action,
        target_type="CLUSTER",
        target_id=row.id,
        target_name=row.name,
        change=change,
    )
