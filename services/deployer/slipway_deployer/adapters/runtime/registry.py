"""Which runtime runs an environment: its cluster's (DESIGN.md §4).

Invariants:
- The environment's cluster chooses, and nothing else: ``local`` → this deployer's local runtime
  and databases; ``self_managed`` → what the ``RuntimeOpener`` makes from the cluster's access.
  There is no fallback: a cluster that cannot be used raises ``RuntimeFailure`` —
  ``CLUSTER_UNREACHABLE`` (unknown or deleted cluster, no credentials, credentials that do not
  open, API server down, credentials refused, address not allowed) or ``RUNTIME_NOT_AVAILABLE``
  (no runtime for that kind here) — with a message naming the cluster.
- A self-managed cluster is reached (``reach``: its API server answers its credentials) each time
  a placement is asked for, so a deployment never starts against an API server that is down. The
  runtime made for it is kept per cluster version: a changed cluster (new credentials) gets a
  new one and the old one is closed.
- ``known`` (the monitor's) never reaches out again for a cluster that failed in the last
  ``retry_after_s``: a dead API server costs one probe per period, not one per service.
- Credentials are opened here only, in memory (``ClusterAccess.token`` is ``repr=False``).
"""

from __future__ import annotations

import base64
import binascii
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from slipway_deployer.adapters.runtime.base import (
    ClusterAccess,
    Databases,
    FailureReason,
    Runtime,
    RuntimeFailure,
    RuntimeOpener,
)
from slipway_deployer.domain.catalog import CatalogCluster
from slipway_libs.crypto import Sealer, SealError

log = structlog.get_logger(__name__)
Reach = Callable[[ClusterAccess], Awaitable[None]]


@dataclass(frozen=True)
class Placement:
    """Where one environment's services run: its cluster and that cluster's runtime."""

    cluster_id: uuid.UUID
    cluster_name: str
    kind: str  # the cluster's: local | self_managed
    runtime: Runtime
    databases: Databases

    def describe(self) -> str:
        return f"cluster {self.cluster_name!r} ({self.kind})"


@dataclass
class _Opened:
    version: int
    runtime: Runtime
    databases: Databases


class Runtimes:
    def __init__(
        self,
        *,
        local_runtime: Runtime,
        local_databases: Databases,
        transport: Sealer,
        reach: Reach,
        opener: RuntimeOpener | None,
        retry_after_s: float = 30.0,
    ) -> None:
        self.local_runtime = local_runtime
        self.local_databases = local_databases
        self._transport = transport
        self._reach = reach
        self._opener = opener
        self._retry_after_s = retry_after_s
        self._opened: dict[uuid.UUID, _Opened] = {}
        self._failed: dict[uuid.UUID, tuple[int, float]] = {}  # cluster -> (version, until)

    async def placement(
        self, cluster_id: uuid.UUID | None, cluster: CatalogCluster | None
    ) -> Placement:
        """The cluster's runtime, its API server reached now; raises ``RuntimeFailure``."""
        found = _usable(cluster_id, cluster)
        if found.kind == "local":
            return self._local(found)
        access = self._access(found)
        try:
            await self._reach(access)
        except RuntimeFailure as failure:
            raise _named(found, failure) from None
        return await self._self_managed(found, access)

    async def known(
        self, cluster_id: uuid.UUID | None, cluster: CatalogCluster | None
    ) -> Placement | None:
        """For the monitor: the placement, or None while the cluster cannot be used."""
        if cluster is not None and cluster.id in self._opened:
            opened = self._opened[cluster.id]
            if opened.version == cluster.version and not cluster.deleted:
                return Placement(
                    cluster.id, cluster.name, cluster.kind, opened.runtime, opened.databases
                )
        if cluster is not None:
            failed = self._failed.get(cluster.id)
            if failed and failed[0] == cluster.version and time.monotonic() < failed[1]:
                return None
        try:
            return await self.placement(cluster_id, cluster)
        except RuntimeFailure:
            if cluster is not None:
                self._failed[cluster.id] = (cluster.version, time.monotonic() + self._retry_after_s)
            return None

    async def close(self) -> None:
        """Let go of every runtime this process made (the local one included)."""
        for opened in self._opened.values():
            await _close(opened.runtime)
        self._opened.clear()
        await self.local_runtime.close()

    def _local(self, cluster: CatalogCluster) -> Placement:
        return Placement(
            cluster.id, cluster.name, "local", self.local_runtime, self.local_databases
        )

    def _access(self, cluster: CatalogCluster) -> ClusterAccess:
        """The cluster's access, opened from what the catalog sealed for this deployer."""
        if cluster.credentials_sealed is None:
            raise _failure(cluster, "the deployer was never given its credentials")
        try:
            sealed = base64.b64decode(cluster.credentials_sealed, validate=True)
            opened = json.loads(self._transport.open(sealed, aad=cluster.id.bytes))
            return ClusterAccess(
                cluster_id=str(cluster.id),
                name=cluster.name,
                api_url=str(opened["api_url"]),
                token=opened.get("token"),
                ca_cert=opened.get("ca_cert"),
                insecure=bool(opened.get("insecure", False)),
                settings=dict(cluster.settings or {}),
                capabilities=dict(cluster.capabilities or {}),
            )
        except (SealError, ValueError, KeyError, TypeError, binascii.Error):
            # SealError: no transport key of this deployer opens it (a misconfigured install)
            raise _failure(cluster, "its credentials could not be opened") from None

    async def _self_managed(self, cluster: CatalogCluster, access: ClusterAccess) -> Placement:
        opened = self._opened.get(cluster.id)
        if opened is None or opened.version != cluster.version:
            if self._opener is None:
                raise RuntimeFailure(
                    FailureReason.RUNTIME_NOT_AVAILABLE,
                    f"cluster {cluster.name!r} is a Kubernetes cluster and this deployer has no "
                    "kubernetes runtime: nothing was deployed (never on another cluster)",
                )
            try:
                runtime, databases = await self._opener(access)
            except RuntimeFailure as failure:
                raise _named(cluster, failure) from None
            if opened is not None:
                await _close(opened.runtime)  # the cluster changed: its old access goes
            opened = _Opened(cluster.version, runtime, databases)
            self._opened[cluster.id] = opened
            self._failed.pop(cluster.id, None)
            log.info("runtimes.opened", cluster_id=str(cluster.id), version=cluster.version)
        return Placement(cluster.id, cluster.name, cluster.kind, opened.runtime, opened.databases)


def _usable(cluster_id: uuid.UUID | None, cluster: CatalogCluster | None) -> CatalogCluster:
    if cluster is None:
        named = f"cluster {cluster_id}" if cluster_id else "the environment's cluster"
        raise RuntimeFailure(
            FailureReason.CLUSTER_UNREACHABLE, f"{named} is not known to the deployer"
        )
    if cluster.deleted:
        raise _failure(cluster, "it was deleted")
    if cluster.kind not in ("local", "self_managed"):
        raise RuntimeFailure(
            FailureReason.RUNTIME_NOT_AVAILABLE,
            f"cluster {cluster.name!r} is of kind {cluster.kind!r}, which this deployer cannot "
            "run anything on",
        )
    return cluster


def _failure(cluster: CatalogCluster, why: str) -> RuntimeFailure:
    return RuntimeFailure(
        FailureReason.CLUSTER_UNREACHABLE,
        f"cluster {cluster.name!r} ({cluster.id}) cannot be reached: {why}",
    )


def _named(cluster: CatalogCluster, failure: RuntimeFailure) -> RuntimeFailure:
    """The runtime's failure, its message prefixed with the cluster it is about."""
    if failure.reason is FailureReason.CLUSTER_UNREACHABLE:
        return _failure(cluster, failure.message)
    return RuntimeFailure(failure.reason, f"cluster {cluster.name!r}: {failure.message}")


async def _close(runtime: Runtime) -> None:
    try:
        await runtime.close()
    except Exception:  # closing a runtime that lost its cluster must not stop the others
        log.warning("runtimes.close_failed", exc_info=True)
