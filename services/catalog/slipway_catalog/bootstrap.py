"""Composition root of the catalog service: the one place that wires its parts together."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import structlog
from fastapi import APIRouter

from slipway_catalog.adapters import KubernetesProbe
from slipway_catalog.api.routes import build_router
from slipway_catalog.config import CatalogSettings
from slipway_catalog.events.subscribers import consumers
from slipway_catalog.usecases import connections, variables
from slipway_catalog.usecases.deps import Deps
from slipway_libs.bus import ConsumerSpec
from slipway_libs.service import Container, ServiceDefinition


def _deps(container: Container) -> Deps:
    if "deps" not in container.extras:
        container.extras["deps"] = Deps.from_settings(container.settings)
    deps: Deps = container.extras["deps"]
    return deps


def _routers(container: Container) -> Sequence[APIRouter]:
    settings: CatalogSettings = container.settings
    return [
        build_router(
            container.require_pool(),
            _deps(container),
            KubernetesProbe(settings.cluster_check_timeout_s, _deps(container).egress),
            container.settings.internal_caller_digests(),
        )
    ]


def _consumers(container: Container) -> Sequence[ConsumerSpec]:
    return consumers(_deps(container))


async def _reseal(container: Container, args: list[str]) -> None:
    """``reseal``: after putting a new sealing key first, re-encrypt every secret with it (secret
    variables and deployed databases' passwords)."""
    deps = _deps(container)
    async with container.require_pool().acquire() as conn, conn.transaction():
        secrets = await variables.reseal_all(conn, deps)
        passwords = await connections.reseal_all(conn, deps)
    structlog.get_logger(__name__).info(
        "catalog.resealed", secrets=secrets, database_passwords=passwords
    )


DEFINITION = ServiceDefinition(
    name="catalog",
    settings_cls=CatalogSettings,
    migrations=Path(__file__).parent / "db" / "migrations",
    routers=_routers,
    consumers=_consumers,
    commands={"reseal": _reseal},
)
