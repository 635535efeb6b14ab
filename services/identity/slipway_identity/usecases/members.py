"""Members and their roles. An organization always keeps an owner; only owners make owners.
Invitations: ``invitations.py``."""

from __future__ import annotations

import uuid

import asyncpg

from slipway_identity.db import queries as q
from slipway_identity.domain.organizations import Member
from slipway_identity.domain.roles import BUILTIN_ROLES, check_can_grant, check_keeps_an_owner
from slipway_identity.usecases import access
from slipway_identity.usecases.deps import SOURCE
from slipway_identity.usecases.organizations import get as get_org
from slipway_libs import audit
from slipway_libs.actor import Actor
from slipway_libs.errors import Denied, InvalidInput, Missing


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


async def change_role(
    conn: asyncpg.Connection, actor: Actor, org_id: uuid.UUID, user_id: uuid.UUID, *, role: str
) -> Member:
    await get_org(conn, org_id, lock=True)
    current = await q.member(conn, org_id, user_id, lock=True)
    if current is None:
        raise Missing("MEMBER_NOT_FOUND", "No such member.")
    builtin, custom = await resolve_role(conn, org_id, role)
    check_can_grant(
        actor_role=actor.organization_role, granted_role=builtin, previous_role=current.role
    )
    losing = current.role == "owner" and builtin != "owner"
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
        change={"from": current.role_name, "to": row.role_name},
    )
    return row


async def remove(
    conn: asyncpg.Connection, actor: Actor, org_id: uuid.UUID, user_id: uuid.UUID
) -> None:
    await get_org(conn, org_id, lock=True)
    current = await q.member(conn, org_id, user_id, lock=True)
    if current is None:
        raise Missing("MEMBER_NOT_FOUND", "No such member.")
    if current.role == "owner" and actor.organization_role != "owner":
        raise Denied("OWNER_ONLY", "Only an owner can remove an owner.")
    check_keeps_an_owner(
        owners=await q.count_owners(conn, org_id), losing_owner=current.role == "owner"
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
        change={"role": current.role_name},
    )
