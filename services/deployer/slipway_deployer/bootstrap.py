"""Composition root of the deployer service: the one place that wires its parts together."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from fastapi import APIRouter

from slipway_deployer.adapters.catalog_revisions import CatalogRevisions
from slipway_deployer.adapters.live_logs import LiveLogs
from slipway_deployer.adapters.runtime._buildah import BuildahStorage, RegistryAccess
from slipway_deployer.adapters.runtime.kubernetes import (
    HelmOptions,
    KubernetesOpener,
    KubernetesSettings,
    RegistryAuth,
    RenderOptions,
)
from slipway_deployer.adapters.runtime.kubernetes.git_chart import GitChartOptions
from slipway_deployer.adapters.runtime.local import LocalRuntime, LocalRuntimeConfig
from slipway_deployer.adapters.runtime.postgres import LocalDatabases
from slipway_deployer.adapters.runtime.reach import ApiServerReach
from slipway_deployer.adapters.runtime.registry import Runtimes
from slipway_deployer.adapters.signals import Signals
from slipway_deployer.api.routes import build_router
from slipway_deployer.config import DeployerSettings
from slipway_deployer.events.subscribers import consumers
from slipway_deployer.usecases.steps import Tools
from slipway_deployer.worker import Worker
from slipway_libs.bus import ConsumerSpec
from slipway_libs.crypto import Sealer
from slipway_libs.egress import EgressPolicy
from slipway_libs.git_local import roots_from_setting
from slipway_libs.registries import RegistryCredentials
from slipway_libs.service import ApiTask, Container, Resources, ServiceDefinition

# the deployer's parts: the catalog revisions its projection has reached, for the routes to wait
# on (one per process: the API's listener feeds it)
DeployerContainer = Container[DeployerSettings, CatalogRevisions]


def _consumers(container: DeployerContainer) -> Sequence[ConsumerSpec]:
    return consumers()


def _catalog_revisions(resources: Resources[DeployerSettings]) -> CatalogRevisions:
    settings = resources.settings
    return CatalogRevisions(resources.require_pool(), settings.database_url, poll_s=settings.poll_s)


def _routers(container: DeployerContainer) -> Sequence[APIRouter]:
    settings = container.settings
    return [
        build_router(
            container.require_pool(),
            settings.internal_caller_digests(),
            revisions=container.parts,
            catalog_wait_s=settings.catalog_wait_s,
        )
    ]


def _api_tasks(container: DeployerContainer) -> Sequence[ApiTask]:
    return [container.parts.listen]


def _tools(container: DeployerContainer) -> Tools:
    settings = container.settings
    pool = container.require_pool()
    transport = Sealer.from_setting(settings.transport_keys)
    at_rest = Sealer.from_setting(settings.sealing_keys) if settings.sealing_keys else transport
    return Tools(
        pool=pool,
        settings=settings,
        runtimes=_runtimes(settings, transport),
        transport=transport,
        at_rest=at_rest,
        signals=Signals(),
        live=LiveLogs(pool),
        runtime_slots=asyncio.Semaphore(settings.parallel_starts),
    )


def _runtimes(settings: DeployerSettings, transport: Sealer) -> Runtimes:
    """The local runtime (one per installation: it locks its state dir) and how the runtime
    of a self-managed cluster is made."""
    state = Path(settings.state_dir)
    storage = BuildahStorage(
        root=settings.buildah_root,
        runroot=settings.buildah_runroot,
        driver=settings.buildah_storage_driver,
        registry=_registry_access(settings),
    )
    egress = EgressPolicy.from_setting(settings.egress_allow)
    return Runtimes(
        local_runtime=LocalRuntime(
            state / "local", storage, LocalRuntimeConfig(nice=settings.workload_nice)
        ),
        local_databases=LocalDatabases(Path(settings.databases_dir or _databases_dir(state))),
        transport=transport,
        reach=ApiServerReach(egress, timeout_s=settings.cluster_timeout_s),
        opener=_kubernetes(settings),
    )


def _kubernetes(settings: DeployerSettings) -> KubernetesOpener:
    """How the runtime of a self-managed cluster is made: the deployer's defaults (a cluster's
    settings override them), pulling the platform registry's images with the deployer's user."""
    password = settings.registry_password
    registry = None
    if settings.registry_username and password is not None:
        registry = RegistryAuth(
            settings.registry, settings.registry_username, password.get_secret_value()
        )
    return KubernetesOpener(
        settings=KubernetesSettings(
            render=RenderOptions(registry=registry),
            helm=HelmOptions(
                binary=settings.helm,
                registry=registry,
                registry_plain_http=not settings.registry_tls,
                egress=EgressPolicy.from_setting(settings.egress_allow),
                git=GitChartOptions(
                    local_roots=roots_from_setting(settings.git_local_roots),
                    egress=EgressPolicy.from_setting(settings.egress_allow),
                ),
            ),
            # under the step's own limit: the pods' reason comes before a bare TIMEOUT
            rollout_timeout_s=settings.apply_timeout_s * 0.9,
        )
    )


def _registry_access(settings: DeployerSettings) -> RegistryAccess:
    password = settings.registry_password
    return RegistryAccess(
        platform=settings.registry,
        platform_tls=settings.registry_tls,
        credentials=RegistryCredentials.of(
            settings.registry_username, password.get_secret_value() if password else None
        ),
        egress=EgressPolicy.from_setting(settings.egress_allow),
    )


def _databases_dir(state: Path) -> Path:
    if os.geteuid() == 0 and not str(state).startswith(tempfile.gettempdir()):
        return Path("/var/lib/slipway/databases")
    return state / "databases"


def _worker_tasks(container: DeployerContainer) -> Sequence[ApiTask]:
    settings = container.settings
    worker = Worker(container.require_pool(), settings.database_url, lambda: _tools(container))
    return [worker.run]


DEFINITION = ServiceDefinition(
    name="deployer",
    settings_cls=DeployerSettings,
    migrations=Path(__file__).parent / "db" / "migrations",
    parts=_catalog_revisions,
    routers=_routers,
    api_tasks=_api_tasks,
    consumers=_consumers,
    worker_tasks=_worker_tasks,
)
