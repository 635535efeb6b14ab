"""Composition root of the builder service: the one place that wires its parts together."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import asyncpg

from slipway_builder.adapters.buildah import Buildah
from slipway_builder.adapters.registry import Registry
from slipway_builder.adapters.sources import Egress
from slipway_builder.config import BuilderSettings
from slipway_builder.events.subscribers import consumers
from slipway_builder.usecases.builds import Builds
from slipway_builder.worker import Worker
from slipway_libs.bus import ConsumerSpec
from slipway_libs.crypto import Sealer
from slipway_libs.egress import EgressPolicy
from slipway_libs.registries import RegistryCredentials
from slipway_libs.service import ApiTask, Container, ServiceDefinition, no_parts


def _consumers(container: Container[BuilderSettings, None]) -> Sequence[ConsumerSpec]:
    return consumers()


def _worker_tasks(container: Container[BuilderSettings, None]) -> Sequence[ApiTask]:
    settings = container.settings
    pool = container.require_pool()
    worker = Worker(
        pool=pool, builds=_builds(settings, pool), max_parallel=settings.max_parallel_builds
    )
    return [worker.run]


def _builds(settings: BuilderSettings, pool: asyncpg.Pool) -> Builds:
    password = settings.registry_password
    credentials = RegistryCredentials.of(
        settings.registry_username, password.get_secret_value() if password else None
    )
    sealer = Sealer.from_setting(settings.transport_keys) if settings.transport_keys else None
    return Builds(
        pool=pool,
        settings=settings,
        sealer=sealer,
        registry=Registry(settings.registry, tls=settings.registry_tls, credentials=credentials),
        buildah=Buildah(settings, credentials),
        egress=Egress(EgressPolicy.from_setting(settings.egress_allow)),
    )


DEFINITION = ServiceDefinition(
    name="builder",
    settings_cls=BuilderSettings,
    migrations=Path(__file__).parent / "db" / "migrations",
    parts=no_parts,
    consumers=_consumers,
    worker_tasks=_worker_tasks,
)
