"""Publishing the access state the gateway projects, from the aggregates, through the outbox."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from slipway_contracts import EventPayload
from slipway_contracts.events import identity as ev
from slipway_identity.db import queries as q
from slipway_identity.domain.api_tokens import ApiToken
from slipway_identity.domain.organizations import Member, Organization
from slipway_identity.domain.roles import CustomRole
from slipway_identity.domain.users import Session, SigningKey
from slipway_identity.usecases.deps import SOURCE
from slipway_libs import outbox


async def _publish(
    conn: asyncpg.Connection, payload: EventPayload, *, key: str, org_id: uuid.UUID | None
) -> None:
    await outbox.publish(
        conn, payload, subject=key, source=SOURCE, organization_id=org_id, announce=True
    )


def organization_state(org: Organization) -> ev.OrganizationChanged:
    return ev.OrganizationChanged(
        organization_id=org.id,
        name=org.name,
        owner_id=org.owner_id,
        deleted=org.deleted_at is not None,
        version=org.version,
    )


def membership_state(member: Member) -> ev.MembershipChanged:
    return ev.MembershipChanged(
        organization_id=member.organization_id,
        user_id=member.user_id,
        role=member.role,
        custom_role_id=member.custom_role_id,
        removed=member.removed_at is not None,
        version=member.version,
    )


def custom_role_state(role: CustomRole) -> ev.CustomRoleChanged:
    return ev.CustomRoleChanged(
        role_id=role.id,
        organization_id=role.organization_id,
        name=role.name,
        clusters=role.clusters,
        projects=role.projects,
        deleted=role.deleted_at is not None,
        version=role.version,
    )


def api_token_state(token: ApiToken) -> ev.ApiTokenChanged:
    return ev.ApiTokenChanged(
        token_id=token.id,
        organization_id=token.organization_id,
        name=token.name,
        token_sha256=token.token_sha256,
        role=token.role,
        custom_role_id=token.custom_role_id,
        revoked=token.revoked_at is not None,
        version=token.version,
    )


def session_state(session: Session) -> ev.SessionRevoked:
    return ev.SessionRevoked(
        session_id=session.id, user_id=session.user_id, expires_at=session.expires_at
    )


async def organization_changed(conn: asyncpg.Connection, org: Organization) -> None:
    await _publish(conn, organization_state(org), key=str(org.id), org_id=org.id)


async def membership_changed(conn: asyncpg.Connection, member: Member) -> None:
    org = member.organization_id
    await _publish(conn, membership_state(member), key=str(org), org_id=org)


async def custom_role_changed(conn: asyncpg.Connection, role: CustomRole) -> None:
    org = role.organization_id
    await _publish(conn, custom_role_state(role), key=str(org), org_id=org)


async def api_token_changed(conn: asyncpg.Connection, token: ApiToken) -> None:
    org = token.organization_id
    await _publish(conn, api_token_state(token), key=str(org), org_id=org)


async def session_revoked(conn: asyncpg.Connection, session: Session) -> None:
    await _publish(conn, session_state(session), key=str(session.user_id), org_id=None)


def signing_key_states(keys: list[SigningKey]) -> list[ev.SigningKey]:
    return [ev.SigningKey(kid=k.kid, status=k.status, jwk=k.public_jwk) for k in keys]


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
            session_state(r).model_dump(mode="json") for r in await q.revoked_sessions(conn)
        ],
        "signing_keys": ev.SigningKeysChanged(
            keys=signing_key_states(await q.signing_keys(conn)), version=version
        ).model_dump(mode="json"),
    }
