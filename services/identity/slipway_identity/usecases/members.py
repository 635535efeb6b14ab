"""Members and invitations. An organization always keeps an owner; only owners make owners."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg

from slipway_identity.db import queries as q
from slipway_identity.domain.accounts import normalize_email
from slipway_identity.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from slipway_identity.domain.roles import BUILTIN_ROLES, check_can_grant, check_keeps_an_owner
from slipway_identity.usecases import access
from slipway_identity.usecases.deps import SOURCE, Deps
from slipway_identity.usecases.organizations import get as get_org
from slipway_libs import audit
from slipway_libs.actor import Actor


async def resolve_role(
    conn: asyncpg.Connection, org_id: uuid.UUID, role: str
) -> tuple[str | None, uuid.UUID | None]:
    """A role reference is a built-in role's name or the id of one of the org's custom roles."""
    if role in BUILTIN_ROLES:
        return role, None
    try:
        role_id = uuid.UUID(role)
    except ValueError:
        raise InvalidInput(
            "INVALID_ROLE",
            f"Unknown role {role!r}: use one of {', '.join(BUILTIN_ROLES)} or a custom role id.",
            field="role",
        ) from None
    if await q.custom_role(conn, org_id, role_id) is None:
        raise InvalidInput(
            "INVALID_ROLE", "No such custom role in this organization.", field="role"
        )
    return None, role_id


def role_name(row: asyncpg.Record) -> str:
    return row["role"] or str(row["custom_role_id"])


async def invite(
    conn: asyncpg.Connection, deps: Deps, actor: Actor, org_id: uuid.UUID, *, email: str, role: str
) -> asyncpg.Record:
    await get_org(conn, org_id)
    email = normalize_email(email)
    builtin, custom = await resolve_role(conn, org_id, role)
    check_can_grant(actor_role=actor.organization_role, granted_role=builtin)
    existing = await q.user_by_email(conn, email)
    if existing is not None and await q.member(conn, org_id, existing["id"]) is not None:
        raise Conflict("ALREADY_MEMBER", "This person is already a member.", field="email")
    await q.expire_pending_invitation(conn, org_id, email)
    row = await q.insert_invitation(
        conn,
        invitation_id=uuid.uuid4(),
        org_id=org_id,
        email=email,
        role=builtin,
        custom_role_id=custom,
        invited_by=actor.user_id,
        expires_at=datetime.now(UTC) + deps.invitation_ttl,
    )
    if row is None:
        raise Conflict(
            "ALREADY_INVITED", "This email already has a pending invitation.", field="email"
        )
    await audit.record(
        conn,
        producer=SOURCE,
        actor=actor,
        organization_id=org_id,
        action="CREATE",
        target_type="INVITATION",
        target_id=row["id"],
        target_name=email,
        change={"email": email, "role": role},
    )
    return row


def invitation_status(row: asyncpg.Record) -> str:
    if row["status"] == "pending" and row["expires_at"] <= datetime.now(UTC):
        return "expired"
    return str(row["status"])


async def accept(
    conn: asyncpg.Connection, actor: Actor, invitation_id: uuid.UUID
) -> asyncpg.Record:
    """The signed-in user whose email was invited becomes a member with the invited role."""
    invitation = await q.invitation(conn, invitation_id)
    user = await q.user_by_id(conn, actor.user_id) if actor.user_id else None
    if invitation is None or user is None or (invitation["email"].lower() != user["email"].lower()):
        raise NotFound("INVITATION_NOT_FOUND", "No such invitation for you.")
    if invitation_status(invitation) != "pending":
        raise Conflict(
            "INVITATION_NOT_PENDING", f"This invitation is {invitation_status(invitation)}."
        )
    await get_org(conn, invitation["organization_id"])
    member = await q.upsert_member(
        conn,
        org_id=invitation["organization_id"],
        user_id=user["id"],
        role=invitation["role"],
        custom_role_id=invitation["custom_role_id"],
    )
    await q.set_invitation_status(conn, invitation_id, "accepted")
    await access.membership_changed(conn, member)
    await audit.record(
        conn,
        producer=SOURCE,
        actor=actor,
        organization_id=invitation["organization_id"],
        action="ACCEPT",
        target_type="INVITATION",
        target_id=invitation_id,
        target_name=user["email"],
        change={"role": role_name(member)},
    )
    return member


async def revoke_invitation(
    conn: asyncpg.Connection, actor: Actor, org_id: uuid.UUID, invitation_id: uuid.UUID
) -> None:
    row = await q.invitation(conn, invitation_id, org_id=org_id)
    if row is None or row["status"] != "pending":
        raise NotFound("INVITATION_NOT_FOUND", "No such pending invitation.")
    await q.set_invitation_status(conn, invitation_id, "revoked")
    await audit.record(
        conn,
        producer=SOURCE,
        actor=actor,
        organization_id=org_id,
        action="DELETE",
        target_type="INVITATION",
        target_id=invitation_id,
        target_name=row["email"],
    )


async def change_role(
    conn: asyncpg.Connection, actor: Actor, org_id: uuid.UUID, user_id: uuid.UUID, *, role: str
) -> asyncpg.Record:
    await get_org(conn, org_id, lock=True)
    current = await q.member(conn, org_id, user_id, lock=True)
    if current is None:
        raise NotFound("MEMBER_NOT_FOUND", "No such member.")
    builtin, custom = await resolve_role(conn, org_id, role)
    check_can_grant(
        actor_role=actor.organization_role, granted_role=builtin, previous_role=current["role"]
    )
    losing = current["role"] == "owner" and builtin != "owner"
    check_keeps_an_owner(owners=await q.count_owners(conn, org_id), losing_owner=losing)
    row = await q.set_member_role(
        conn, org_id=org_id, user_id=user_id, role=builtin, custom_role_id=custom
    )
    await access.membership_changed(conn, row)
    await audit.record(
        conn,
        producer=SOURCE,
        actor=actor,
        organization_id=org_id,
        action="UPDATE",
        target_type="MEMBER_ROLE",
        target_id=user_id,
        change={"from": role_name(current), "to": role_name(row)},
    )
    return row


async def remove(
    conn: asyncpg.Connection, actor: Actor, org_id: uuid.UUID, user_id: uuid.UUID
) -> None:
    await get_org(conn, org_id, lock=True)
    current = await q.member(conn, org_id, user_id, lock=True)
    if current is None:
        raise NotFound("MEMBER_NOT_FOUND", "No such member.")
    if current["role"] == "owner" and actor.organization_role != "owner":
        raise Forbidden("OWNER_ONLY", "Only an owner can remove an owner.")
    check_keeps_an_owner(
        owners=await q.count_owners(conn, org_id), losing_owner=current["role"] == "owner"
    )
    row = await q.remove_member(conn, org_id, user_id)
    await access.membership_changed(conn, row)
    await audit.record(
        conn,
        producer=SOURCE,
        actor=actor,
        organization_id=org_id,
        action="DELETE",
        target_type="MEMBERS_AND_ROLES",
        target_id=user_id,
        change={"role": role_name(current)},
    )
