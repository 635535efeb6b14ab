"""What the catalog's use cases need besides a connection, built once by the composition root."""

from __future__ import annotations

from dataclasses import dataclass, field

from slipway_catalog.adapters import local_capabilities
from slipway_catalog.config import CatalogSettings
from slipway_catalog.domain import capabilities
from slipway_catalog.domain.capabilities import Capabilities
from slipway_catalog.domain.clusters import ClusterIn
from slipway_libs.crypto import Sealer
from slipway_libs.egress import EgressPolicy


@dataclass(frozen=True)
class Deps:
    at_rest: Sealer
    transport: Sealer
    local_runtime: bool
    # the non-public targets (cluster API servers) the platform may connect to: exact host:port
    egress: EgressPolicy = field(default_factory=EgressPolicy)
    # the platform's own registry, which images may always name
    platform_registry: str = "127.0.0.1:15000"
    # what the local cluster runs (from_settings reads it from this host)
    local_offer: Capabilities = field(default_factory=lambda: capabilities.local(()))
    # the cluster the first organization gets besides the local one (from_settings reads the
    # kubeconfig file once, so a missing or invalid one stops the service at start)
    bootstrap_cluster: ClusterIn | None = None

    @classmethod
    def from_settings(cls, settings: CatalogSettings) -> Deps:
        at_rest = Sealer.from_setting(settings.sealing_keys)
        transport = (
            Sealer.from_setting(settings.transport_keys) if settings.transport_keys else at_rest
        )
        return cls(
            at_rest=at_rest,
            transport=transport,
            local_runtime=settings.local_runtime,
            egress=EgressPolicy.from_setting(settings.egress_allow),
            platform_registry=settings.registry,
            local_offer=local_capabilities(settings.local_postgresql_version),
            bootstrap_cluster=_bootstrap_cluster(settings),
        )


def _bootstrap_cluster(settings: CatalogSettings) -> ClusterIn | None:
    if settings.bootstrap_kubeconfig is None:
        return None
    cluster = ClusterIn(
        name=settings.bootstrap_cluster_name,
        kind="self_managed",
        kubeconfig=settings.bootstrap_kubeconfig.read_text(),
    )
    cluster.access()  # a kubeconfig Slipway cannot use fails here, not at the first organization
    return cluster
