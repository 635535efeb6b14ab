"""Composition root of the logs service: the one place that wires its parts together."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path

import structlog
from fastapi import APIRouter

from slipway_libs.bus import ConsumerSpec
from slipway_libs.service import ApiTask, Container, Resources, ServiceDefinition
from slipway_logs.adapters.line_feed import LineFeed
from slipway_logs.api.follow import build_follow_router
from slipway_logs.api.routes import build_router
from slipway_logs.config import LogsSettings
from slipway_logs.events.subscribers import consumers
from slipway_logs.maintenance import Maintenance
from slipway_logs.usecases import retention
from slipway_logs.usecases.follow import FollowLimits

# the process's one feed of new lines to followers (its LISTEN runs beside the API)
LogsContainer = Container[LogsSettings, LineFeed]


def _feed(resources: Resources[LogsSettings]) -> LineFeed:
    settings = resources.settings
    return LineFeed(resources.require_pool(), settings.database_url, poll_s=settings.follow_poll_s)


def _routers(container: LogsContainer) -> Sequence[APIRouter]:
    settings = container.settings
    return [
        build_router(
            container.require_pool(),
            settings.internal_caller_digests(),
            retention_days=settings.retention_days,
        ),
        build_follow_router(
            container.require_pool(),
            container.parts,
            FollowLimits(
                backlog_lines=settings.follow_backlog_lines,
                backlog_bytes=settings.follow_backlog_bytes,
                max_followers=settings.follow_max_followers,
                heartbeat_s=settings.follow_heartbeat_s,
                lifetime_s=settings.follow_lifetime_s,
                end_grace_s=settings.follow_end_grace_s,
            ),
            settings.internal_caller_digests(),
        ),
    ]


def _api_tasks(container: LogsContainer) -> Sequence[ApiTask]:
    return [container.parts.listen]


def _consumers(container: LogsContainer) -> Sequence[ConsumerSpec]:
    return consumers()


def _worker_tasks(container: LogsContainer) -> Sequence[ApiTask]:
    settings = container.settings
    maintenance = Maintenance(
        container.require_pool(),
        settings.database_url,
        retention_days=settings.retention_days,
        days_ahead=settings.partitions_ahead_days,
        every_s=settings.maintenance_every_s,
    )
    return [maintenance.run]


async def _set_retention(container: LogsContainer, args: list[str]) -> None:
    """``set-retention <organization id> <days|default>``: keep an organization's lines fewer
    days than the installation does (``default``: as long as the installation)."""
    if len(args) != 2:
        raise SystemExit("usage: set-retention <organization id> <days|default>")
    organization_id = uuid.UUID(args[0])
    days = None if args[1] == "default" else int(args[1])
    if days is not None and not days >= 1:
        raise SystemExit("days must be at least 1")
    async with container.require_pool().acquire() as conn, conn.transaction():
        await retention.set_organization_retention(conn, organization_id, days)
    structlog.get_logger(__name__).info(
        "logs.retention_set", organization_id=str(organization_id), days=days
    )


DEFINITION = ServiceDefinition(
    name="logs",
    settings_cls=LogsSettings,
    migrations=Path(__file__).parent / "db" / "migrations",
    parts=_feed,
    routers=_routers,
    api_tasks=_api_tasks,
    consumers=_consumers,
    worker_tasks=_worker_tasks,
    commands={"set-retention": _set_retention},
)
