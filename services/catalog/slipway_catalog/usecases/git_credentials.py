"""An organization's git credentials: created, listed, deleted — never read back.

The secret is sealed at rest with the catalog's key, bound to the credential's id. What leaves
the catalog is the ``GitCredentialChanged`` event, whose secret is sealed again with the
installation's transport key (the deployer opens it only to seal it for one build, which the
builder opens). Answers, audit records and logs name the credential, never its secret.
"""

from __future__ import annotations

import base64
import uuid

import asyncpg
import structlog

from slipway_catalog.db import git_credential_queries as q
from slipway_catalog.domain.git_credentials import GitCredential, GitCredentialIn
from slipway_catalog.usecases import organizations, publish
from slipway_catalog.usecases.deps import Deps
from slipway_contracts.events import catalog as ev
from slipway_libs import audit, outbox
from slipway_libs.actor import Actor
from slipway_libs.errors import Clash, Missing

log = structlog.get_logger(__name__)


def not_found() -> Missing:
    return Missing("GIT_CREDENTIAL_NOT_FOUND", "No such git credential.")


async def create(
    conn: asyncpg.Connection, deps: Deps, actor: Actor, org_id: uuid.UUID, body: GitCredentialIn
) -> GitCredential:
    host, secret, known_hosts = body.normalized_host(), body.secret(), body.checked_known_hosts()
    await organizations.require(conn, deps, org_id)
    credential_id = uuid.uuid4()
    row = await q.insert(
        conn,
        credential_id=credential_id,
        org_id=org_id,
        name=body.name,
        kind=body.kind,
        host=host,
        sealed=deps.at_rest.seal(secret.encode(), aad=credential_id.bytes),
        known_hosts=known_hosts,
    )
    if row is None:
        raise Clash(
            "GIT_CREDENTIAL_NAME_TAKEN", "A git credential with this name exists.", field="name"
        )
    await _publish(conn, deps, row)
    await _audit(conn, actor, row, "CREATE")
    log.info("git_credential.created", credential_id=str(row.id), kind=row.kind, host=row.host)
    return row


async def list_for(conn: asyncpg.Connection, deps: Deps, org_id: uuid.UUID) -> list[GitCredential]:
    await organizations.require(conn, deps, org_id)
    return await q.listed(conn, org_id)


async def get(
    conn: asyncpg.Connection, org_id: uuid.UUID, credential_id: uuid.UUID
) -> GitCredential:
    row = await q.one(conn, org_id, credential_id)
    if row is None:
        raise not_found()
    return row


async def delete(
    conn: asyncpg.Connection, actor: Actor, org_id: uuid.UUID, credential_id: uuid.UUID
) -> None:
    """The secret is erased at once; builds asked for from now on go without it."""
    row = await q.delete(conn, org_id, credential_id)
    if row is None:
        raise not_found()
    await _publish(conn, None, row)
    await _audit(conn, actor, row, "DELETE")
    log.info("git_credential.deleted", credential_id=str(row.id))


async def reseal_all(conn: asyncpg.Connection, deps: Deps) -> int:
    """After putting a new sealing key first: re-encrypt every credential's secret with it."""
    count = 0
    for row in await q.sealed_secrets(conn):
        if deps.at_rest.needs_reseal(row.sealed):
            resealed = deps.at_rest.reseal(row.sealed, aad=row.owner_id.bytes)
            await q.set_sealed(conn, row.owner_id, resealed)
            count += 1
    return count


def state(row: GitCredential, deps: Deps | None) -> ev.GitCredentialChanged:
    """The event: the secret sealed for transport (a tombstone carries none)."""
    sealed = None
    if deps is not None and row.deleted_at is None and row.secret_sealed is not None:
        clear = deps.at_rest.open(row.secret_sealed, aad=row.id.bytes)
        sealed = base64.b64encode(deps.transport.seal(clear, aad=row.id.bytes)).decode()
    return ev.GitCredentialChanged(
        credential_id=row.id,
        organization_id=row.organization_id,
        name=row.name,
        kind=row.kind,
        host=row.host,
        secret_sealed=sealed,
        known_hosts=row.known_hosts if row.deleted_at is None else None,
        deleted=row.deleted_at is not None,
        version=row.version,
    )


async def _publish(conn: asyncpg.Connection, deps: Deps | None, row: GitCredential) -> None:
    await outbox.publish(
        conn,
        state(row, deps),
        subject=str(row.id),
        source=publish.SOURCE,
        organization_id=row.organization_id,
        announce=True,
    )


async def _audit(conn: asyncpg.Connection, actor: Actor, row: GitCredential, action: str) -> None:
    await audit.record(
        conn,
        producer=publish.SOURCE,
        actor=actor,
        organization_id=row.organization_id,
        action=action,
        target_type="GIT_CREDENTIAL",
        target_id=row.id,
        target_name=row.name,
        change={"kind": row.kind, "host": row.host} if action != "DELETE" else None,
    )
