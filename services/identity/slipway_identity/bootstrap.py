"""Composition root of the identity service: the one place that wires its parts together."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import structlog
from fastapi import APIRouter

from slipway_identity.api.routes import build_router
from slipway_identity.config import IdentitySettings
from slipway_identity.events.subscribers import consumers
from slipway_identity.usecases import accounts
from slipway_identity.usecases.deps import Deps
from slipway_libs.bus import ConsumerSpec
from slipway_libs.service import ApiTask, Container, Resources, ServiceDefinition

# identity's parts are its use cases' dependencies
IdentityContainer = Container[IdentitySettings, Deps]


def _deps(resources: Resources[IdentitySettings]) -> Deps:
    return Deps.from_settings(resources.settings)


def _routers(container: IdentityContainer) -> Sequence[APIRouter]:
    return [
        build_router(
            container.require_pool(), container.parts, container.settings.internal_caller_digests()
        )
    ]


def _consumers(container: IdentityContainer) -> Sequence[ConsumerSpec]:
    return consumers()


def _api_tasks(container: IdentityContainer) -> Sequence[ApiTask]:
    async def ensure_signing_key() -> None:
        # a key exists before the first login, so verifiers know it from their snapshot
        async with container.require_pool().acquire() as conn, conn.transaction():
            await accounts.ensure_signing_key(conn, container.parts)

    return [ensure_signing_key]


async def _rotate_keys(container: IdentityContainer, args: list[str]) -> None:
    """``rotate-keys [--revoke-previous]``: a new signing key; with ``--revoke-previous`` (a
    leaked key) every session token signed before is refused at once."""
    parser = argparse.ArgumentParser(prog="python -m slipway_identity rotate-keys")
    parser.add_argument("--revoke-previous", action="store_true")
    options = parser.parse_args(args)
    async with container.require_pool().acquire() as conn, conn.transaction():
        kid = await accounts.rotate_signing_key(
            conn, container.parts, revoke_previous=options.revoke_previous
        )
    structlog.get_logger(__name__).info(
        "identity.key_rotated", kid=kid, revoked_previous=options.revoke_previous
    )


async def _reseal(container: IdentityContainer, args: list[str]) -> None:
    """``reseal``: re-encrypt sealed private keys with the first (active) sealing key."""
    async with container.require_pool().acquire() as conn, conn.transaction():
        count = await accounts.reseal_signing_keys(conn, container.parts)
    structlog.get_logger(__name__).info("identity.resealed", keys=count)


DEFINITION = ServiceDefinition(
    name="identity",
    settings_cls=IdentitySettings,
    migrations=Path(__file__).parent / "db" / "migrations",
    parts=_deps,
    routers=_routers,
    consumers=_consumers,
    api_tasks=_api_tasks,
    commands={"rotate-keys": _rotate_keys, "reseal": _reseal},
)
