"""The scheduler's copy of the organizations' git credentials (``catalog.GitCredentialChanged``),
for polling private repositories. Kept as the catalog sent it: sealed with the transport key,
bound to the credential's id; opened only for the poll that uses it (``usecases.git_polling``)."""

from __future__ import annotations

import asyncpg

from slipway_contracts import REGISTRY, Envelope
from slipway_contracts.events import catalog as catalog_events
from slipway_scheduler.db import poll_queries as q

EVENT_TYPES = (catalog_events.GitCredentialChanged.event_type,)


async def on_changed(conn: asyncpg.Connection, envelope: Envelope) -> None:
    """In the inbox transaction of the credentials' consumer group."""
    event = REGISTRY.parse(envelope)
    assert isinstance(event, catalog_events.GitCredentialChanged)
    await q.project_credential(conn, event)
