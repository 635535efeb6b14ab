"""All SQL of the identity service: small functions, connection first, ``$n`` parameters.

Tenant scoping is in the ``WHERE`` of every organization-owned row. Every change to something
the gateway's access projection holds takes a new ``access_version``. Emails arrive in their one
normalized form (``domain.accounts.normalize_email``: lowercase) and are compared as
``lower(email) = $n`` so that the ``lower(email)`` indexes serve.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import asyncpg

from slipway_identity.domain import roles
from slipway_identity.domain.api_tokens import ApiToken
from slipway_identity.domain.invitations import Invitation
from slipway_identity.domain.login_throttle import Failures
from slipway_identity.domain.organizations import Member, Organization
from slipway_identity.domain.read_models import (
    AuditEvent,
    InvitationToUser,
    MemberListing,
    OrganizationOfUser,
)
from slipway_identity.domain.roles import CustomRole
from slipway_identity.domain.users import Session, SigningKey, User
from slipway_libs import db

_NEXT = "nextval('access_version')"
_T = TypeVar("_T")

# --- rows to models: one mapping per model; nothing outside this module reads a row


def _maybe(project: Callable[[asyncpg.Record], _T], row: asyncpg.Record | None) -> _T | None:
    return None if row is None else project(row)


def _user(row: asyncpg.Record) -> User:
    return User(
        id=row["id"],
        email=row["email"],
        name=row["name"],
        password_hash=row["password_hash"],
        created_at=row["created_at"],
    )


def _session(row: asyncpg.Record) -> Session:
    return Session(
        id=row["id"],
        user_id=row["user_id"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
    )


def _signing_key(row: asyncpg.Record) -> SigningKey:
    return SigningKey(
        kid=row["kid"],
        private_key_sealed=bytes(row["private_key_sealed"]),
        public_jwk=row["public_jwk"],
        status=row["status"],
    )


def _failures(row: asyncpg.Record) -> Failures:
    return Failures(count=row["n"], first=row["first"])


def _organization(row: asyncpg.Record) -> Organization:
    return Organization(
        id=row["id"],
        name=row["name"],
        description=row["description"],
        owner_id=row["owner_id"],
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        deleted_at=row["deleted_at"],
    )


def _organization_of_user(row: asyncpg.Record) -> OrganizationOfUser:
    return OrganizationOfUser(
        organization=_organization(row), role=row["role"], custom_role_id=row["custom_role_id"]
    )


def _member(row: asyncpg.Record) -> Member:
    return Member(
        organization_id=row["organization_id"],
        user_id=row["user_id"],
        role=row["role"],
        custom_role_id=row["custom_role_id"],
        version=row["version"],
        created_at=row["created_at"],
        removed_at=row["removed_at"],
    )


def _member_listing(row: asyncpg.Record) -> MemberListing:
    return MemberListing(member=_member(row), email=row["email"], name=row["name"])


def _custom_role(row: asyncpg.Record) -> CustomRole:
    return CustomRole(
        id=row["id"],
        organization_id=row["organization_id"],
        name=row["name"],
        description=row["description"],
        clusters=row["clusters"],
        projects=row["projects"],
        version=row["version"],
        created_at=row["created_at"],
        deleted_at=row["deleted_at"],
    )


def _invitation(row: asyncpg.Record) -> Invitation:
    return Invitation(
        id=row["id"],
        organization_id=row["organization_id"],
        email=row["email"],
        role=row["role"],
        custom_role_id=row["custom_role_id"],
        status=row["status"],
        token_sha256=row["token_sha256"],
        expires_at=row["expires_at"],
        created_at=row["created_at"],
    )


def _invitation_to_user(row: asyncpg.Record) -> InvitationToUser:
    return InvitationToUser(invitation=_invitation(row), organization_name=row["organization_name"])


def _api_token(row: asyncpg.Record) -> ApiToken:
    return ApiToken(
        id=row["id"],
        organization_id=row["organization_id"],
        name=row["name"],
        description=row["description"],
        token_sha256=row["token_sha256"],
        token_prefix=row["token_prefix"],
        role=row["role"],
        custom_role_id=row["custom_role_id"],
        version=row["version"],
        created_at=row["created_at"],
        last_used_at=row["last_used_at"],
        revoked_at=row["revoked_at"],
    )


def _audit_event(row: asyncpg.Record) -> AuditEvent:
    return AuditEvent(
        id=row["id"],
        organization_id=row["organization_id"],
        occurred_at=row["occurred_at"],
        source=row["source"],
        actor_type=row["actor_type"],
        actor_id=row["actor_id"],
        actor_name=row["actor_name"],
        origin=row["origin"],
        action=row["action"],
        target_type=row["target_type"],
        target_id=row["target_id"],
        target_name=row["target_name"],
        project_id=row["project_id"],
        environment_id=row["environment_id"],
        change=row["change"],
    )


# --- users and sessions


async def insert_user(
    conn: asyncpg.Connection, *, user_id: uuid.UUID, email: str, name: str, password_hash: str
) -> User | None:
    """None when the address is taken."""
    row = await conn.fetchrow(
        "INSERT INTO users (id, email, name, password_hash) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT DO NOTHING RETURNING *",
        user_id,
        email,
        name,
        password_hash,
    )
    return _maybe(_user, row)


async def user_by_email(conn: asyncpg.Connection, email: str) -> User | None:
    row = await conn.fetchrow("SELECT * FROM users WHERE lower(email) = $1", email)
    return _maybe(_user, row)


async def user_by_id(conn: asyncpg.Connection, user_id: uuid.UUID) -> User | None:
    return _maybe(_user, await conn.fetchrow("SELECT * FROM users WHERE id = $1", user_id))


async def insert_session(
    conn: asyncpg.Connection,
    *,
    session_id: uuid.UUID,
    user_id: uuid.UUID,
    refresh_hash: str,
    expires_at: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO sessions (id, user_id, refresh_token_hash, expires_at)"
        " VALUES ($1, $2, $3, $4)",
        session_id,
        user_id,
        refresh_hash,
        expires_at,
    )


async def session_by_refresh(conn: asyncpg.Connection, refresh_hash: str) -> Session | None:
    row = await conn.fetchrow(
        "SELECT * FROM sessions WHERE refresh_token_hash = $1 FOR UPDATE", refresh_hash
    )
    return _maybe(_session, row)


async def session_by_previous_refresh(
    conn: asyncpg.Connection, refresh_hash: str
) -> Session | None:
    row = await conn.fetchrow("SELECT * FROM sessions WHERE previous_hash = $1", refresh_hash)
    return _maybe(_session, row)


async def rotate_session(
    conn: asyncpg.Connection, *, session_id: uuid.UUID, old_hash: str, new_hash: str
) -> None:
    await conn.execute(
        "UPDATE sessions SET refresh_token_hash = $2, previous_hash = $3, refreshed_at = now()"
        " WHERE id = $1",
        session_id,
        new_hash,
        old_hash,
    )


async def session_by_id(conn: asyncpg.Connection, session_id: uuid.UUID) -> Session | None:
    return _maybe(_session, await conn.fetchrow("SELECT * FROM sessions WHERE id = $1", session_id))


async def revoke_session(conn: asyncpg.Connection, session_id: uuid.UUID) -> Session | None:
    """The session, now revoked; None when it was already."""
    row = await conn.fetchrow(
        "UPDATE sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL"
        " RETURNING id, user_id, expires_at, revoked_at",
        session_id,
    )
    return _maybe(_session, row)


async def revoked_sessions(conn: asyncpg.Connection) -> list[Session]:
    rows = await conn.fetch(
        "SELECT id, user_id, expires_at, revoked_at FROM sessions"
        " WHERE revoked_at IS NOT NULL AND expires_at > now()"
    )
    return [_session(r) for r in rows]


# --- signing keys


async def signing_keys(conn: asyncpg.Connection) -> list[SigningKey]:
    rows = await conn.fetch("SELECT * FROM signing_keys ORDER BY created_at")
    return [_signing_key(r) for r in rows]


async def active_signing_key(conn: asyncpg.Connection) -> SigningKey | None:
    row = await conn.fetchrow("SELECT * FROM signing_keys WHERE status = 'active'")
    return _maybe(_signing_key, row)


async def insert_signing_key(
    conn: asyncpg.Connection, *, kid: str, sealed: bytes, jwk: dict[str, Any]
) -> None:
    await conn.execute(
        "INSERT INTO signing_keys (kid, private_key_sealed, public_jwk, status)"
        " VALUES ($1, $2, $3, 'active')",
        kid,
        sealed,
        jwk,
    )


async def set_sealed_key(conn: asyncpg.Connection, kid: str, sealed: bytes) -> None:
    await conn.execute(
        "UPDATE signing_keys SET private_key_sealed = $2 WHERE kid = $1", kid, sealed
    )


async def retire_signing_keys(conn: asyncpg.Connection, *, revoke: bool) -> None:
    status = "revoked" if revoke else "retired"
    await conn.execute(
        "UPDATE signing_keys SET status = $1, retired_at = coalesce(retired_at, now())"
        " WHERE status = 'active' OR ($1 = 'revoked' AND status = 'retired')",
        status,
    )


async def lock_signing_keys(conn: asyncpg.Connection) -> None:
    await conn.execute("SELECT pg_advisory_xact_lock(727101)")


async def next_access_version(conn: asyncpg.Connection) -> int:
    value: int = await conn.fetchval(f"SELECT {_NEXT}")
    return value


# --- login throttling (emails and addresses arrive normalized; domain/login_throttle.py)


async def record_login_attempt(
    conn: asyncpg.Connection, *, email: str, address: str, succeeded: bool
) -> None:
    await conn.execute(
        "INSERT INTO login_attempts (email, address, succeeded) VALUES ($1, $2, $3)",
        email,
        address,
        succeeded,
    )


async def remember_login_address(conn: asyncpg.Connection, *, email: str, address: str) -> None:
    await conn.execute(
        "INSERT INTO login_addresses (email, address) VALUES ($1, $2)"
        " ON CONFLICT (email, address) DO UPDATE SET last_succeeded_at = now()",
        email,
        address,
    )


async def signed_in_from(conn: asyncpg.Connection, *, email: str, address: str) -> bool:
    found: bool = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM login_addresses WHERE email = $1 AND address = $2)",
        email,
        address,
    )
    return found


async def account_failures_from(
    conn: asyncpg.Connection, *, email: str, address: str, since: datetime
) -> Failures:
    """Failures against the account from one address."""
    row = await conn.fetchrow(
        "SELECT count(*) AS n, min(at) AS first FROM login_attempts"
        " WHERE lower(email) = $1 AND address = $2 AND NOT succeeded AND at > $3",
        email,
        address,
        since,
    )
    return _failures(row)


async def account_failures_from_strangers(
    conn: asyncpg.Connection, *, email: str, since: datetime
) -> Failures:
    """Failures against the account from the addresses it never signed in from."""
    row = await conn.fetchrow(
        "SELECT count(*) AS n, min(at) AS first FROM login_attempts"
        " WHERE lower(email) = $1 AND NOT succeeded AND at > $2"
        " AND address NOT IN (SELECT address FROM login_addresses WHERE email = $1)",
        email,
        since,
    )
    return _failures(row)


async def login_failures_from(
    conn: asyncpg.Connection, *, address: str, since: datetime
) -> Failures:
    """Failures from one address, whatever the accounts."""
    row = await conn.fetchrow(
        "SELECT count(*) AS n, min(at) AS first FROM login_attempts"
        " WHERE address = $1 AND NOT succeeded AND at > $2",
        address,
        since,
    )
    return _failures(row)


# --- organizations


async def insert_organization(
    conn: asyncpg.Connection, *, org_id: uuid.UUID, name: str, description: str, owner_id: uuid.UUID
) -> Organization:
    row = await conn.fetchrow(
        "INSERT INTO organizations (id, name, description, owner_id) VALUES ($1, $2, $3, $4)"
        " RETURNING *",
        org_id,
        name,
        description,
        owner_id,
    )
    return _organization(row)


async def organization(
    conn: asyncpg.Connection, org_id: uuid.UUID, *, lock: bool = False
) -> Organization | None:
    suffix = " FOR UPDATE" if lock else ""
    row = await conn.fetchrow(
        f"SELECT * FROM organizations WHERE id = $1 AND deleted_at IS NULL{suffix}", org_id
    )
    return _maybe(_organization, row)


async def organizations_of_user(
    conn: asyncpg.Connection, user_id: uuid.UUID
) -> list[OrganizationOfUser]:
    rows = await conn.fetch(
        "SELECT o.*, m.role, m.custom_role_id FROM organizations o"
        " JOIN members m ON m.organization_id = o.id"
        " WHERE m.user_id = $1 AND m.removed_at IS NULL AND o.deleted_at IS NULL"
        " ORDER BY o.created_at",
        user_id,
    )
    return [_organization_of_user(r) for r in rows]


async def update_organization(
    conn: asyncpg.Connection, org_id: uuid.UUID, *, name: str | None, description: str | None
) -> Organization:
    row = await conn.fetchrow(
        f"UPDATE organizations SET name = coalesce($2, name),"
        f" description = coalesce($3, description), updated_at = now(), version = {_NEXT}"
        " WHERE id = $1 AND deleted_at IS NULL RETURNING *",
        org_id,
        name,
        description,
    )
    return _organization(row)


async def set_owner(
    conn: asyncpg.Connection, org_id: uuid.UUID, owner_id: uuid.UUID
) -> Organization:
    row = await conn.fetchrow(
        f"UPDATE organizations SET owner_id = $2, updated_at = now(), version = {_NEXT}"
        " WHERE id = $1 RETURNING *",
        org_id,
        owner_id,
    )
    return _organization(row)


async def delete_organization(conn: asyncpg.Connection, org_id: uuid.UUID) -> Organization:
    row = await conn.fetchrow(
        f"UPDATE organizations SET deleted_at = now(), version = {_NEXT}"
        " WHERE id = $1 AND deleted_at IS NULL RETURNING *",
        org_id,
    )
    return _organization(row)


# --- members


async def upsert_member(
    conn: asyncpg.Connection,
    *,
    org_id: uuid.UUID,
    user_id: uuid.UUID,
    role: str | None,
    custom_role_id: uuid.UUID | None,
) -> Member:
    row = await conn.fetchrow(
        "INSERT INTO members (organization_id, user_id, role, custom_role_id)"
        " VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (organization_id, user_id) DO UPDATE SET role = $3, custom_role_id = $4,"
        f" removed_at = NULL, updated_at = now(), version = {_NEXT} RETURNING *",
        org_id,
        user_id,
        role,
        custom_role_id,
    )
    return _member(row)


async def member(
    conn: asyncpg.Connection, org_id: uuid.UUID, user_id: uuid.UUID, *, lock: bool = False
) -> Member | None:
    suffix = " FOR UPDATE" if lock else ""
    row = await conn.fetchrow(
        "SELECT * FROM members WHERE organization_id = $1 AND user_id = $2"
        f" AND removed_at IS NULL{suffix}",
        org_id,
        user_id,
    )
    return _maybe(_member, row)


async def members(conn: asyncpg.Connection, org_id: uuid.UUID) -> list[MemberListing]:
    rows = await conn.fetch(
        "SELECT m.*, u.email, u.name FROM members m JOIN users u ON u.id = m.user_id"
        " WHERE m.organization_id = $1 AND m.removed_at IS NULL ORDER BY m.created_at",
        org_id,
    )
    return [_member_listing(r) for r in rows]


async def set_member_role(
    conn: asyncpg.Connection,
    *,
    org_id: uuid.UUID,
    user_id: uuid.UUID,
    role: str | None,
    custom_role_id: uuid.UUID | None,
) -> Member:
    row = await conn.fetchrow(
        "UPDATE members SET role = $3, custom_role_id = $4, updated_at = now(),"
        f" version = {_NEXT} WHERE organization_id = $1 AND user_id = $2 RETURNING *",
        org_id,
        user_id,
        role,
        custom_role_id,
    )
    return _member(row)


async def remove_member(conn: asyncpg.Connection, org_id: uuid.UUID, user_id: uuid.UUID) -> Member:
    row = await conn.fetchrow(
        f"UPDATE members SET removed_at = now(), version = {_NEXT}"
        " WHERE organization_id = $1 AND user_id = $2 RETURNING *",
        org_id,
        user_id,
    )
    return _member(row)


async def count_owners(conn: asyncpg.Connection, org_id: uuid.UUID) -> int:
    # lock the owners so that two concurrent demotions cannot both see "two owners"
    rows = await conn.fetch(
        "SELECT user_id FROM members WHERE organization_id = $1 AND role = 'owner'"
        " AND removed_at IS NULL FOR UPDATE",
        org_id,
    )
    return len(rows)


async def members_with_custom_role(conn: asyncpg.Connection, role_id: uuid.UUID) -> int:
    n: int = await conn.fetchval(
        "SELECT count(*) FROM members WHERE custom_role_id = $1 AND removed_at IS NULL", role_id
    )
    return n


# --- custom roles


async def insert_custom_role(
    conn: asyncpg.Connection,
    *,
    role_id: uuid.UUID,
    org_id: uuid.UUID,
    name: str,
    description: str,
    clusters: list[dict[str, Any]],
    projects: list[dict[str, Any]],
) -> CustomRole:
    row = await db.fetchrow_unique(
        conn,
        roles.role_name_taken,
        "INSERT INTO custom_roles (id, organization_id, name, description, clusters, projects)"
        " VALUES ($1, $2, $3, $4, $5, $6) RETURNING *",
        role_id,
        org_id,
        name,
        description,
        clusters,
        projects,
    )
    return _custom_role(row)


async def custom_role(
    conn: asyncpg.Connection, org_id: uuid.UUID, role_id: uuid.UUID
) -> CustomRole | None:
    row = await conn.fetchrow(
        "SELECT * FROM custom_roles WHERE organization_id = $1 AND id = $2 AND deleted_at IS NULL",
        org_id,
        role_id,
    )
    return _maybe(_custom_role, row)


async def custom_roles(conn: asyncpg.Connection, org_id: uuid.UUID) -> list[CustomRole]:
    rows = await conn.fetch(
        "SELECT * FROM custom_roles WHERE organization_id = $1 AND deleted_at IS NULL"
        " ORDER BY created_at",
        org_id,
    )
    return [_custom_role(r) for r in rows]


async def update_custom_role(
    conn: asyncpg.Connection,
    *,
    org_id: uuid.UUID,
    role_id: uuid.UUID,
    name: str,
    description: str,
    clusters: list[dict[str, Any]],
    projects: list[dict[str, Any]],
) -> CustomRole | None:
    row = await db.fetchrow_unique(
        conn,
        roles.role_name_taken,
        "UPDATE custom_roles SET name = $3, description = $4, clusters = $5, projects = $6,"
        f" updated_at = now(), version = {_NEXT}"
        " WHERE organization_id = $1 AND id = $2 AND deleted_at IS NULL RETURNING *",
        org_id,
        role_id,
        name,
        description,
        clusters,
        projects,
    )
    return _maybe(_custom_role, row)


async def delete_custom_role(
    conn: asyncpg.Connection, org_id: uuid.UUID, role_id: uuid.UUID
) -> CustomRole | None:
    row = await conn.fetchrow(
        f"UPDATE custom_roles SET deleted_at = now(), version = {_NEXT}"
        " WHERE organization_id = $1 AND id = $2 AND deleted_at IS NULL RETURNING *",
        org_id,
        role_id,
    )
    return _maybe(_custom_role, row)


# --- invitations


async def upsert_pending_invitation(
    conn: asyncpg.Connection,
    *,
    invitation_id: uuid.UUID,
    org_id: uuid.UUID,
    email: str,
    role: str | None,
    custom_role_id: uuid.UUID | None,
    invited_by: uuid.UUID | None,
    token_sha256: str,
    expires_at: datetime,
) -> tuple[Invitation, bool]:
    """A new pending invitation, or the address's pending one renewed (new token, role, expiry);
    the flag is True for a new one."""
    row = await conn.fetchrow(
        "INSERT INTO invitations (id, organization_id, email, role, custom_role_id, invited_by,"
        " token_sha256, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        " ON CONFLICT (organization_id, lower(email)) WHERE status = 'pending' DO UPDATE SET"
        " role = $4, custom_role_id = $5, invited_by = $6, token_sha256 = $7, expires_at = $8"
        " RETURNING *, (xmax = 0) AS created",
        invitation_id,
        org_id,
        email,
        role,
        custom_role_id,
        invited_by,
        token_sha256,
        expires_at,
    )
    return _invitation(row), row["created"]


async def expire_pending_invitation(
    conn: asyncpg.Connection, org_id: uuid.UUID, email: str
) -> None:
    await conn.execute(
        "UPDATE invitations SET status = 'revoked' WHERE organization_id = $1"
        " AND lower(email) = $2 AND status = 'pending' AND expires_at <= now()",
        org_id,
        email,
    )


async def invitation(
    conn: asyncpg.Connection, invitation_id: uuid.UUID, *, org_id: uuid.UUID | None = None
) -> Invitation | None:
    row = await conn.fetchrow(
        "SELECT * FROM invitations WHERE id = $1 AND ($2::uuid IS NULL OR organization_id = $2)"
        " FOR UPDATE",
        invitation_id,
        org_id,
    )
    return _maybe(_invitation, row)


async def invitations(conn: asyncpg.Connection, org_id: uuid.UUID) -> list[Invitation]:
    rows = await conn.fetch(
        "SELECT * FROM invitations WHERE organization_id = $1 AND status = 'pending'"
        " ORDER BY created_at",
        org_id,
    )
    return [_invitation(r) for r in rows]


async def invitations_for_email(conn: asyncpg.Connection, email: str) -> list[InvitationToUser]:
    rows = await conn.fetch(
        "SELECT i.*, o.name AS organization_name FROM invitations i"
        " JOIN organizations o ON o.id = i.organization_id AND o.deleted_at IS NULL"
        " WHERE lower(i.email) = $1 AND i.status = 'pending' AND i.expires_at > now()"
        " ORDER BY i.created_at",
        email,
    )
    return [_invitation_to_user(r) for r in rows]


async def set_invitation_status(
    conn: asyncpg.Connection, invitation_id: uuid.UUID, status: str
) -> Invitation:
    row = await conn.fetchrow(
        "UPDATE invitations SET status = $2,"
        " accepted_at = CASE WHEN $2 = 'accepted' THEN now() ELSE accepted_at END"
        " WHERE id = $1 RETURNING *",
        invitation_id,
        status,
    )
    return _invitation(row)


# --- API tokens


async def insert_api_token(
    conn: asyncpg.Connection,
    *,
    token_id: uuid.UUID,
    org_id: uuid.UUID,
    name: str,
    description: str,
    sha256: str,
    prefix: str,
    role: str | None,
    custom_role_id: uuid.UUID | None,
    created_by: uuid.UUID | None,
) -> ApiToken:
    row = await conn.fetchrow(
        "INSERT INTO api_tokens (id, organization_id, name, description, token_sha256,"
        " token_prefix, role, custom_role_id, created_by)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *",
        token_id,
        org_id,
        name,
        description,
        sha256,
        prefix,
        role,
        custom_role_id,
        created_by,
    )
    return _api_token(row)


async def api_tokens(conn: asyncpg.Connection, org_id: uuid.UUID) -> list[ApiToken]:
    rows = await conn.fetch(
        "SELECT * FROM api_tokens WHERE organization_id = $1 AND revoked_at IS NULL"
        " ORDER BY created_at",
        org_id,
    )
    return [_api_token(r) for r in rows]


async def revoke_api_token(
    conn: asyncpg.Connection, org_id: uuid.UUID, token_id: uuid.UUID
) -> ApiToken | None:
    row = await conn.fetchrow(
        f"UPDATE api_tokens SET revoked_at = now(), version = {_NEXT}"
        " WHERE organization_id = $1 AND id = $2 AND revoked_at IS NULL RETURNING *",
        org_id,
        token_id,
    )
    return _maybe(_api_token, row)


async def revoke_api_tokens_of_org(conn: asyncpg.Connection, org_id: uuid.UUID) -> list[ApiToken]:
    rows = await conn.fetch(
        f"UPDATE api_tokens SET revoked_at = now(), version = {_NEXT}"
        " WHERE organization_id = $1 AND revoked_at IS NULL RETURNING *",
        org_id,
    )
    return [_api_token(r) for r in rows]


async def touch_api_tokens(conn: asyncpg.Connection, used: dict[uuid.UUID, datetime]) -> None:
    await conn.execute(
        "UPDATE api_tokens t SET last_used_at = greatest(coalesce(t.last_used_at, u.at), u.at)"
        " FROM unnest($1::uuid[], $2::timestamptz[]) AS u(id, at) WHERE t.id = u.id",
        list(used),
        list(used.values()),
    )


# --- access snapshot (for the gateway's projection)


async def snapshot_organizations(conn: asyncpg.Connection) -> list[Organization]:
    rows = await conn.fetch("SELECT * FROM organizations WHERE deleted_at IS NULL")
    return [_organization(r) for r in rows]


async def snapshot_members(conn: asyncpg.Connection) -> list[Member]:
    rows = await conn.fetch("SELECT * FROM members WHERE removed_at IS NULL")
    return [_member(r) for r in rows]


async def snapshot_custom_roles(conn: asyncpg.Connection) -> list[CustomRole]:
    rows = await conn.fetch("SELECT * FROM custom_roles WHERE deleted_at IS NULL")
    return [_custom_role(r) for r in rows]


async def snapshot_api_tokens(conn: asyncpg.Connection) -> list[ApiToken]:
    rows = await conn.fetch("SELECT * FROM api_tokens WHERE revoked_at IS NULL")
    return [_api_token(r) for r in rows]


# --- audit log


async def insert_audit_event(
    conn: asyncpg.Connection, *, event_id: uuid.UUID, source: str, data: dict[str, Any]
) -> None:
    await conn.execute(
        "INSERT INTO audit_events (id, organization_id, occurred_at, source, actor_type,"
        " actor_id, actor_name, origin, action, target_type, target_id, target_name,"
        " project_id, environment_id, change)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        " ON CONFLICT (id) DO NOTHING",
        event_id,
        data["organization_id"],
        data["occurred_at"],
        source,
        data["actor_type"],
        data.get("actor_id"),
        data.get("actor_name"),
        data["origin"],
        data["action"],
        data["target_type"],
        data["target_id"],
        data.get("target_name"),
        data.get("project_id"),
        data.get("environment_id"),
        data.get("change"),
    )


async def audit_events(
    conn: asyncpg.Connection,
    org_id: uuid.UUID,
    *,
    filters: dict[str, Any],
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[AuditEvent]:
    """Newest first; ``after`` is the (occurred_at, id) of the last row of the previous page."""
    rows = await conn.fetch(
        "SELECT * FROM audit_events WHERE organization_id = $1"
        " AND ($2::timestamptz IS NULL OR occurred_at >= $2)"
        " AND ($3::timestamptz IS NULL OR occurred_at < $3)"
        " AND ($4::text IS NULL OR actor_id = $4)"
        " AND ($5::text IS NULL OR target_type = $5)"
        " AND ($6::text IS NULL OR target_id = $6)"
        " AND ($7::text IS NULL OR action = $7)"
        " AND ($8::text IS NULL OR origin = $8)"
        " AND ($9::uuid IS NULL OR project_id = $9)"
        " AND ($10::uuid IS NULL OR environment_id = $10)"
        " AND ($11::timestamptz IS NULL OR (occurred_at, id) < ($11, $12))"
        " ORDER BY occurred_at DESC, id DESC LIMIT $13",
        org_id,
        filters.get("from"),
        filters.get("to"),
        filters.get("actor_id"),
        filters.get("target_type"),
        filters.get("target_id"),
        filters.get("action"),
        filters.get("origin"),
        filters.get("project_id"),
        filters.get("environment_id"),
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    return [_audit_event(r) for r in rows]
