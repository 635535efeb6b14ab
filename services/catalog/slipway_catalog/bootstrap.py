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
from slipway_catalog.usecases import connections, git_credentials, variables
from slipway_catalog.usecases.deps import Deps
from slipway_libs.bus import ConsumerSpec
from slipway_libs.service import Container, Resources, ServiceDefinition

# the catalog's parts are its use cases' dependencies
CatalogContainer = Container[CatalogSettings, Deps]


def _deps(resources: Resources[CatalogSettings]) -> Deps:
    return Deps.from_settings(resources.settings)


def _routers(container: CatalogContainer) -> Sequence[APIRouter]:
    settings = container.settings
    return [
        build_router(
            container.require_pool(),
            container.parts,
            KubernetesProbe(settings.cluster_check_timeout_s, container.parts.egress),
            settings.internal_caller_digests(),
        )
    ]


def _consumers(container: CatalogContainer) -> Sequence[ConsumerSpec]:
    return consumers(container.parts)


async def _reseal(container: CatalogContainer, args: list[str]) -> None:
    """``reseal``: after putting a new sealing key first, re-encrypt every secret with it (secret
    variables, deployed databases' passwords and git credentials)."""
    deps = container.parts
    async with container.require_pool().acquire() as conn, conn.transaction():
        secrets = await variables.reseal_all(conn, deps)
        passwords = await connections.reseal_all(conn, deps)
        git = await git_credentials.reseal_all(conn, deps)
    structlog.get_logger(__name__).info(
        "catalog.resealed", secrets=secrets, database_passwords=passwords, git_credentials=git
    )


DEFINITION = ServiceDefinition(
    name="catalog",
    settings_cls=CatalogSettings,
    migrations=Path(__file__).parent / "db" / "migrations",
    parts=_deps,
    routers=_routers,
    consumers=_consumers,
    commands={"reseal": _reseal},
)
