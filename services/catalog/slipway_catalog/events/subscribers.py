"""Kafka subscribers of the catalog: organizations from identity (each gets the local cluster),
deployed databases' connections from the deployer (their built-in variables), and the
scheduler's commands about pull requests' preview environments."""

from __future__ import annotations

import asyncpg

from slipway_catalog.usecases import connections, organizations, previews
from slipway_catalog.usecases.deps import Deps
from slipway_contracts import Envelope
from slipway_contracts.events.deployer import SERVICE_TOPIC, DatabaseConnectionChanged
from slipway_contracts.events.identity import (
    ORGANIZATION_TOPIC,
    OrganizationCreated,
    OrganizationDeleted,
)
from slipway_contracts.events.scheduler import (
    COMMANDS_TOPIC,
    PreviewDeletionRequested,
    PreviewRequested,
)
from slipway_libs.bus import ConsumerSpec

ORGANIZATIONS_GROUP = "catalog.organizations"
DEPLOYER_GROUP = "catalog.deployer"
PREVIEWS_GROUP = "catalog.previews"


def consumers(deps: Deps) -> list[ConsumerSpec]:
    async def created(conn: asyncpg.Connection, envelope: Envelope) -> None:
        await organizations.on_created(conn, deps, envelope)

    async def connection_changed(conn: asyncpg.Connection, envelope: Envelope) -> None:
        await connections.on_changed(conn, deps, envelope)

    async def preview_requested(conn: asyncpg.Connection, envelope: Envelope) -> None:
        await previews.on_requested(conn, deps, envelope)

    async def preview_deletion_requested(conn: asyncpg.Connection, envelope: Envelope) -> None:
        await previews.on_deletion_requested(conn, deps, envelope)

    return [
        ConsumerSpec(
            group_id=ORGANIZATIONS_GROUP,
            topics=[ORGANIZATION_TOPIC],
            handlers={
                OrganizationCreated.event_type: created,
                OrganizationDeleted.event_type: organizations.on_deleted,
            },
        ),
        ConsumerSpec(
            group_id=DEPLOYER_GROUP,
            topics=[SERVICE_TOPIC],
            handlers={DatabaseConnectionChanged.event_type: connection_changed},
        ),
        ConsumerSpec(
            group_id=PREVIEWS_GROUP,
            topics=[COMMANDS_TOPIC],
            handlers={
                PreviewRequested.event_type: preview_requested,
                PreviewDeletionRequested.event_type: preview_deletion_requested,
            },
        ),
    ]
