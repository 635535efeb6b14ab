"""How the deployer opens a self-managed cluster (the ``RuntimeOpener`` port): one API client per
cluster, shared by its runtime and its databases, with the cluster's own settings (ingress class
and domain, storage class) over the deployer's defaults. Nothing is sent to the cluster here (the
registry reaches it first)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from slipway_deployer.adapters.runtime.base import ClusterAccess
from slipway_deployer.adapters.runtime.kubernetes.client import KubeClient
from slipway_deployer.adapters.runtime.kubernetes.databases import KubernetesDatabases
from slipway_deployer.adapters.runtime.kubernetes.helm import Helm, KubeAccess
from slipway_deployer.adapters.runtime.kubernetes.namespaces import Namespaces
from slipway_deployer.adapters.runtime.kubernetes.render_database import DatabaseOptions
from slipway_deployer.adapters.runtime.kubernetes.runtime import (
    KubernetesRuntime,
    KubernetesSettings,
)
from slipway_deployer.adapters.runtime.kubernetes.validate import Validator


@dataclass(frozen=True)
class KubernetesOpener:
    settings: KubernetesSettings = field(default_factory=KubernetesSettings)
    databases: DatabaseOptions = field(default_factory=DatabaseOptions)

    async def __call__(
        self, access: ClusterAccess
    ) -> tuple[KubernetesRuntime, KubernetesDatabases]:
        settings, databases = self.for_cluster(access.settings)
        client = KubeClient.connect(
            api_url=access.api_url,
            token=access.token,
            ca_cert=access.ca_cert,
            insecure=access.insecure,
            request_timeout_s=settings.request_timeout_s,
            max_connections=settings.max_connections,
        )
        validator = Validator(client, settings.kubernetes_version)
        kube = KubeAccess(access.api_url, access.token, access.ca_cert, access.insecure)
        helm = Helm(kube, client, settings.helm)
        namespaces = Namespaces(client)  # the runtime's and the databases': one memo
        runtime = KubernetesRuntime(
            client, settings, validator=validator, helm=helm, namespaces=namespaces
        )
        return runtime, KubernetesDatabases(
            client,
            validator,
            options=databases,
            ready_timeout_s=settings.rollout_timeout_s,
            log_tail_lines=settings.log_tail_lines,
            start_slots=settings.start_slots,
            namespaces=namespaces,
        )

    def for_cluster(self, cluster: Mapping[str, str]) -> tuple[KubernetesSettings, DatabaseOptions]:
        """The deployer's defaults, with what the cluster's settings say instead."""
        render = self.settings.render
        render = replace(
            render,
            ingress_class=cluster.get("ingress_class", render.ingress_class),
            ingress_domain=cluster.get("ingress_domain", render.ingress_domain),
            ingress_tls=cluster.get("ingress_tls", str(render.ingress_tls)).lower() == "true",
            tls_issuer=cluster.get("tls_issuer", render.tls_issuer),
        )
        storage_class = cluster.get("storage_class", self.databases.storage_class)
        return (
            replace(self.settings, render=render),
            replace(self.databases, storage_class=storage_class),
        )
