"""The ``kubernetes`` runtime (issue 14): ``render`` (workload → manifests, pure), ``rollout``
(reading rollouts, pure), ``validate`` (schemas, offline), ``client`` (the API, in dicts) and
``runtime`` (``KubernetesRuntime``, the ``Runtime`` port)."""

from slipway_deployer.adapters.runtime.kubernetes.render import RegistryAuth, RenderOptions
from slipway_deployer.adapters.runtime.kubernetes.runtime import (
    KubernetesRuntime,
    KubernetesSettings,
)

__all__ = ["KubernetesRuntime", "KubernetesSettings", "RegistryAuth", "RenderOptions"]
