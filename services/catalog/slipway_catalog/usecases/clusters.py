"""Clusters: the local one (every organization has it) and self-managed Kubernetes clusters.

Credentials (token, CA, kubeconfig) are sealed at rest, bound to the cluster's id, and never
returned by the API nor carried by events.

A cluster's API server is a target the user chose: saving it refuses an address the platform does
not connect to (loopback, private, link-local, metadata... unless allow-listed) for an early, clear
422, and the probe checks again, on the address it connects to, at every check (DNS rebinding).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Sequence
from typing import Any, Protocol

import asyncpg
import structlog

from slipway_catalog.db import queries as q
from slipway_catalog.domain import capabilities as capability_rules
from slipway_catalog.domain import cluster_check
from slipway_catalog.domain import clusters as domain
from slipway_catalog.domain.capabilities import Capabilities
from slipway_catalog.domain.cluster_check import Facts, Need
from slipway_catalog.domain.clusters import (
    CHECK_MESSAGES,
    Cluster,
    ClusterCheckFailed,
    ClusterIn,
    ClusterPatch,
)
from slipway_catalog.domain.kubeconfig import ApiServer, ClusterAccess
from slipway_catalog.usecases import cluster_records, organizations, publish
from slipway_catalog.usecases.deps import Deps
from slipway_libs.actor import Actor
from slipway_libs.egress import TargetNotAllowed, TargetUnresolved, checked_addresses
from slipway_libs.errors import Clash, InvalidInput, Missing

log = structlog.get_logger(__name__)
_RESOLVE_AT_SAVE_S = 5.0


class ClusterProbe(Protocol):
    async def facts(self, access: ClusterAccess) -> Facts:
        """The version, nodes and the account's rules; raises ClusterCheckFailed."""
        ...

    async def allowed(self, access: ClusterAccess, needs: Sequence[Need]) -> list[bool]:
        """Whether the account may do each need (one access review each)."""
        ...


def not_found() -> Missing:
    return Missing("CLUSTER_NOT_FOUND", "No such cluster.")


async def get(conn: asyncpg.Connection, cluster_id: uuid.UUID) -> Cluster:
    row = await q.cluster(conn, cluster_id)
    if row is None:
        raise not_found()
    return row


def capabilities(deps: Deps, row: Cluster) -> Capabilities:
    """What the cluster can run (the local one: what this host's local runtime runs)."""
    return capability_rules.of(row, local_offer=deps.local_offer)


async def list_for(conn: asyncpg.Connection, deps: Deps, org_id: uuid.UUID) -> list[Cluster]:
    await organizations.require(conn, deps, org_id)
    return await q.clusters(conn, org_id)


async def create(
    conn: asyncpg.Connection, deps: Deps, actor: Actor, org_id: uuid.UUID, body: ClusterIn
) -> Cluster:
    domain.refuse_kind(body.kind)
    await organizations.require(conn, deps, org_id)
    await _ensure_allowed(deps, body.access().server)
    row = await cluster_records.insert_self_managed(conn, deps, actor, org_id, body)
    if row is None:
        raise Clash("CLUSTER_NAME_TAKEN", "A cluster with this name exists.", field="name")
    return row


async def update(
    conn: asyncpg.Connection, deps: Deps, actor: Actor, cluster_id: uuid.UUID, patch: ClusterPatch
) -> Cluster:
    current = await get(conn, cluster_id)
    if current.kind == "local":
        raise InvalidInput("LOCAL_CLUSTER_READ_ONLY", "The local cluster cannot be edited.")
    merged = patch.apply(credentials(deps, current), name=current.name, api_url=current.api_url)
    server = merged.access().server
    await _ensure_allowed(deps, server)
    sealed = deps.at_rest.seal(json.dumps(merged.credentials()).encode(), aad=cluster_id.bytes)
    row = await q.update_cluster(
        conn, cluster_id, name=merged.name, api_url=server.url, sealed=sealed
    )
    await publish.cluster(conn, deps, row)
    await cluster_records.record_change(
        conn, actor, row, "UPDATE", {"name": row.name, "api_url": row.api_url}
    )
    return row


async def delete(conn: asyncpg.Connection, deps: Deps, actor: Actor, cluster_id: uuid.UUID) -> None:
    current = await get(conn, cluster_id)
    if current.kind == "local":
        raise InvalidInput("LOCAL_CLUSTER_READ_ONLY", "The local cluster cannot be deleted.")
    if await q.environments_on_cluster(conn, cluster_id):
        raise Clash("CLUSTER_IN_USE", "Environments still run on this cluster.")
    row = await q.delete_cluster(conn, cluster_id)
    await publish.cluster(conn, deps, row)
    await cluster_records.record_change(conn, actor, row, "DELETE", None)


def credentials(deps: Deps, row: Cluster) -> dict[str, Any]:
    if row.credentials_sealed is None:
        return {}
    opened = deps.at_rest.open(row.credentials_sealed, aad=row.id.bytes)
    creds: dict[str, Any] = json.loads(opened)
    return creds


async def check(deps: Deps, row: Cluster, probe: ClusterProbe) -> dict[str, Any]:
    """The cluster as Slipway would use it: its Kubernetes version, its nodes and whether
    Slipway's account may do what deployments need, or a clear reason why not."""
    if row.kind == "local":
        return {
            "ok": True,
            "kind": "local",
            "kubernetes_version": None,
            "message": "The local runtime runs on this machine.",
        }
    access = domain.access(credentials(deps, row), api_url=row.api_url)
    try:
        facts = await probe.facts(access)
        missing = cluster_check.not_granted(facts.rules)
        if missing and facts.rules_incomplete:
            # another authorizer may allow what the rules do not list: ask for each
            answers = await probe.allowed(access, missing)
            missing = [need for need, allowed in zip(missing, answers, strict=True) if not allowed]
    except ClusterCheckFailed as failed:
        log.info(
            "cluster.check_failed",
            cluster_id=str(row.id),
            reason=str(failed.reason),
            detail=failed.detail,
        )
        return {
            "ok": False,
            "kind": "self_managed",
            "reason": str(failed.reason),
            "message": CHECK_MESSAGES[failed.reason],
        }
    answer = cluster_check.answer(facts, missing)
    log.info(
        "cluster.checked", cluster_id=str(row.id), ok=answer["ok"], reason=answer.get("reason")
    )
    return answer


async def _ensure_allowed(deps: Deps, server: ApiServer) -> None:
    """422 unless the platform may connect to the API server: https, or an allow-listed http
    target; no address it resolves to now is refused. A name that does not resolve now is
    accepted: it may later, and every connection is checked again."""
    if server.scheme != "https" and not deps.egress.names(server.host, server.port):
        raise InvalidInput(
            "INVALID_API_URL", "The API server URL must be https://host[:port].", field="api_url"
        )
    try:
        async with asyncio.timeout(_RESOLVE_AT_SAVE_S):
            await checked_addresses(server.host, server.port, policy=deps.egress)
    except TargetNotAllowed as refused:
        raise InvalidInput("TARGET_NOT_ALLOWED", refused.message, field="api_url") from None
    except (TargetUnresolved, TimeoutError):
        pass
