"""The ``kubernetes`` runtime (issue 14): ``render`` and ``render_database`` (workload →
manifests, pure), ``rollout`` (reading rollouts, pure), ``validate`` (schemas, offline),
``client`` (the API in dicts), ``runtime`` (``KubernetesRuntime``, the ``Runtime`` port),
``databases`` (``KubernetesDatabases``, the ``Databases`` port), ``helm`` (Helm services with
the helm CLI, the ``Charts`` port) and ``opener``
(``KubernetesOpener``, the ``RuntimeOpener`` port)."""

from slipway_deployer.adapters.runtime.kubernetes.databases import KubernetesDatabases
from slipway_deployer.adapters.runtime.kubernetes.helm import Helm, HelmOptions
from slipway_deployer.adapters.runtime.kubernetes.opener import KubernetesOpener
from slipway_deployer.adapters.runtime.kubernetes.render import RegistryAuth, RenderOptions
from slipway_deployer.adapters.runtime.kubernetes.render_database import DatabaseOptions
from slipway_deployer.adapters.runtime.kubernetes.runtime import (
    KubernetesRuntime,
    KubernetesSettings,
)

__all__ = [
    "DatabaseOptions",
    "Helm",
    "HelmOptions",
    "KubernetesDatabases",
    "KubernetesOpener",
    "KubernetesRuntime",
    "KubernetesSettings",
    "RegistryAuth",
    "RenderOptions",
]
