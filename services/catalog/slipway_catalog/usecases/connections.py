"""Deployed databases' connections, from the deployer's events: the values of their built-in
variables (``SLIPWAY_<NAME>_HOST``, ``_PORT``, ``_USER``, ``_DATABASE``, ``_PASSWORD``, ``_URL``).

The deployer seals the password with the transport key; the catalog opens it and seals it again
with its at-rest key (the service id's bytes as associated data in both). Only the newest version
of each database is kept; a deleted database keeps a tombstone without values.
"""

from __future__ import annotations

import base64
import binascii
import uuid

import asyncpg

from slipway_catalog.db import queries as q
from slipway_catalog.usecases.deps import Deps
from slipway_contracts import Envelope
from slipway_contracts.events.deployer import DatabaseConnectionChanged
from slipway_contracts.variables import DatabaseConnectionInfo
from slipway_libs.crypto import SealError
from slipway_libs.errors import PermanentError


async def on_changed(conn: asyncpg.Connection, deps: Deps, envelope: Envelope) -> None:
    event = DatabaseConnectionChanged.model_validate(envelope.data)
    stored = await q.database_connection_version(conn, event.service_id)
    if stored is not None and stored >= event.version:
        return  # the same or an older state: the newest is kept
    sealed = None
    if not event.deleted:
        password = _open_transport(deps, event)
        sealed = deps.at_rest.seal(password, aad=event.service_id.bytes)
    await q.upsert_database_connection(
        conn,
        service_id=event.service_id,
        org_id=event.organization_id,
        env_id=event.environment_id,
        engine=event.engine,
        host=None if event.deleted else event.host,
        port=None if event.deleted else event.port,
        user=None if event.deleted else event.user,
        database=None if event.deleted else event.database,
        sealed=sealed,
        version=event.version,
        deleted=event.deleted,
    )


def _open_transport(deps: Deps, event: DatabaseConnectionChanged) -> bytes:
    try:
        blob = base64.b64decode(event.password_sealed, validate=True)
        password = deps.transport.open(blob, aad=event.service_id.bytes)
        password.decode()  # a variable's value is text
        return password
    except (binascii.Error, SealError, UnicodeDecodeError) as exc:
        # no retry can open it: the wrong transport key, or not sealed for this service
        raise PermanentError(
            f"the password of database {event.service_id} does not open: {exc}"
        ) from None


async def of_environment(
    conn: asyncpg.Connection, deps: Deps, env_id: uuid.UUID
) -> dict[uuid.UUID, DatabaseConnectionInfo]:
    """The connections of an environment's deployed databases, passwords opened, by service."""
    return {
        row.service_id: DatabaseConnectionInfo(
            host=row.host,
            port=row.port,
            user=row.user,
            database=row.database,
            password=deps.at_rest.open(row.password_sealed, aad=row.service_id.bytes).decode(),
        )
        for row in await q.database_connections(conn, env_id)
    }


async def reseal_all(conn: asyncpg.Connection, deps: Deps) -> int:
    """After putting a new sealing key first: re-encrypt every stored password with it."""
    count = 0
    for row in await q.sealed_database_passwords(conn):
        if deps.at_rest.needs_reseal(row.sealed):
            aad = row.owner_id.bytes
            await q.set_sealed_database_password(
                conn, row.owner_id, deps.at_rest.reseal(row.sealed, aad=aad)
            )
            count += 1
    return count
