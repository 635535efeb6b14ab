"""Publishing the access state the gateway projects, from rows, through the outbox."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from slipway_contracts import EventPayload
from slipway_contracts.events import identity as ev
from slipway_identity.db import queries as q
from slipway_identity.usecases.deps import SOURCE
from slipway_libs import outbox


async def _publish(
    conn: asyncpg.Connection, payload: EventPayload, *, key: str, org_id: uuid.UUID | None
) -> None:
    await outbox.publish(
        conn, payload, subject=key, source=SOURCE, organization_id=org_id, announce=True
    )


def organization_state(row: asyncpg.Record) -> ev.OrganizationChanged:
    return ev.OrganizationChanged(
        organization_id=row["id"],
        name=row["name"],
        owner_id=row["owner_id"],
        deleted=row["deleted_at"] is not None,
        version=row["version"],
    )


def membership_state(row: asyncpg.Record) -> ev.MembershipChanged:
    return ev.MembershipChanged(
        organization_id=row["organization_id"],
        user_id=row["user_id"],
        role=row["role"],
        custom_role_id=row["custom_role_id"],
        removed=row["removed_at"] is not None,
        version=row["version"],
    )


def custom_role_state(row: asyncpg.Record) -> ev.CustomRoleChanged:
    return ev.CustomRoleChanged(
        role_id=row["id"],
        organization_id=row["organization_id"],
        name=row["name"],
        clusters=row["clusters"],
        projects=row["projects"],
        deleted=row["deleted_at"] is not None,
        version=row["version"],
    )


def api_token_state(row: asyncpg.Record) -> ev.ApiTokenChanged:
    return ev.ApiTokenChanged(
        token_id=row["id"],
        organization_id=row["organization_id"],
        name=row["name"],
        token_sha256=row["token_sha256"],
        role=row["role"],
        custom_role_id=row["custom_role_id"],
        revoked=row["revoked_at"] is not None,
        version=row["version"],
    )


async def organization_changed(conn: asyncpg.Connection, row: asyncpg.Record) -> None:
    await _publish(conn, organization_state(row), key=str(row["id"]), org_id=row["id"])


async def membership_changed(conn: asyncpg.Connection, row: asyncpg.Record) -> None:
    org = row["organization_id"]
    await _publish(conn, membership_state(row), key=str(org), org_id=org)


async def custom_role_changed(conn: asyncpg.Connection, row: asyncpg.Record) -> None:
    org = row["organization_id"]
    await _publish(conn, custom_role_state(row), key=str(org), org_id=org)


async def api_token_changed(conn: asyncpg.Connection, row: asyncpg.Record) -> None:
    org = row["organization_id"]
    await _publish(conn, api_token_state(row), key=str(org), org_id=org)


async def session_revoked(conn: asyncpg.Connection, row: asyncpg.Record) -> None:
    payload = ev.SessionRevoked(
        session_id=row["id"], user_id=row["user_id"], expires_at=row["expires_at"]
    )
    await _publish(conn, payload, key=str(row["user_id"]), org_id=None)


def signing_key_states(rows: list[asyncpg.Record]) -> list[ev.SigningKey]:
    return [ev.SigningKey(kid=r["kid"], status=r["status"], jwk=r["public_jwk"]) for r in rows]


async def signing_keys_changed(conn: asyncpg.Connection) -> None:
    rows = await q.signing_keys(conn)
    version = await q.next_access_version(conn)
    payload = ev.SigningKeysChanged(keys=signing_key_states(rows), version=version)
    await _publish(conn, payload, key="signing-keys", org_id=None)


async def signing_keys_state(conn: asyncpg.Connection) -> dict[str, Any]:
    """The current key set, for a verifier that met a ``kid`` it does not know yet."""
    rows = await q.signing_keys(conn)
    version = await q.next_access_version(conn)
    return ev.SigningKeysChanged(keys=signing_key_states(rows), version=version).model_dump(
        mode="json"
    )


async def snapshot(conn: asyncpg.Connection) -> dict[str, object]:
    """Everything the gateway projects, as the same payloads the events carry.

    ``version`` is read first: any change committed after this snapshot's transaction began
    carries a larger version, so a projection that applies "newer wins" converges.
    """
    version = await q.next_access_version(conn)
    return {
        "version": version,
        "organizations": [
            organization_state(r).model_dump(mode="json")
            for r in await q.snapshot_organizations(conn)
        ],
        "memberships": [
            membership_state(r).model_dump(mode="json") for r in await q.snapshot_members(conn)
        ],
        "custom_roles": [
            custom_role_state(r).model_dump(mode="json")
            for r in await q.snapshot_custom_roles(conn)
        ],
        "api_tokens": [
            api_token_state(r).model_dump(mode="json") for r in await q.snapshot_api_tokens(conn)
        ],
        "revoked_sessions": [
            ev.SessionRevoked(
                session_id=r["id"], user_id=r["user_id"], expires_at=r["expires_at"]
            ).model_dump(mode="json")
            for r in await q.revoked_sessions(conn)
        ],
        "signing_keys": ev.SigningKeysChanged(
            keys=signing_key_states(await q.signing_keys(conn)), version=version
        ).model_dump(mode="json"),
    }
