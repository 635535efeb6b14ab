"""Composition root of the identity service: the one place that wires its parts together."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fastapi import APIRouter

from slipway_identity.api.routes import build_router
from slipway_identity.config import IdentitySettings
from slipway_identity.events.subscribers import consumers
from slipway_identity.usecases import accounts
from slipway_identity.usecases.deps import Deps
from slipway_libs.bus import ConsumerSpec
from slipway_libs.service import ApiTask, Container, ServiceDefinition


def _deps(container: Container) -> Deps:
    if "deps" not in container.extras:
        container.extras["deps"] = Deps.from_settings(container.settings)
    deps: Deps = container.extras["deps"]
    return deps


def _routers(container: Container) -> Sequence[APIRouter]:
    return [
        build_router(container.require_pool(), _deps(container), container.platform.internal_token)
    ]


def _consumers(container: Container) -> Sequence[ConsumerSpec]:
    return consumers()


def _api_tasks(container: Container) -> Sequence[ApiTask]:
    async def ensure_signing_key() -> None:
        # a key exists before the first login, so verifiers know it from their snapshot
        async with container.require_pool().acquire() as conn, conn.transaction():
            await accounts.ensure_signing_key(conn, _deps(container))

    return [ensure_signing_key]


DEFINITION = ServiceDefinition(
    name="identity",
    settings_cls=IdentitySettings,
    migrations=Path(__file__).parent / "db" / "migrations",
    routers=_routers,
    consumers=_consumers,
    api_tasks=_api_tasks,
)
