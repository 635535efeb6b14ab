"""Organizations: create (the creator becomes owner), read, update, delete, transfer."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg

from slipway_contracts.events.identity import OrganizationCreated, OrganizationDeleted
from slipway_identity.db import queries as q
from slipway_identity.domain.accounts import clean_name
from slipway_identity.domain.organizations import Organization
from slipway_identity.usecases import access
from slipway_identity.usecases.deps import SOURCE
from slipway_libs import audit, outbox
from slipway_libs.actor import Actor
from slipway_libs.errors import Clash, Denied, Missing


def org_not_found() -> Missing:
    return Missing("ORGANIZATION_NOT_FOUND", "No such organization.")


async def get(conn: asyncpg.Connection, org_id: uuid.UUID, *, lock: bool = False) -> Organization:
    row = await q.organization(conn, org_id, lock=lock)
    if row is None:
        raise org_not_found()
    return row


async def create(
    conn: asyncpg.Connection, actor: Actor, *, name: str, description: str = ""
) -> Organization:
    if actor.type != "user" or actor.user_id is None:
        raise Denied("USERS_ONLY", "Only a signed-in user can create an organization.")
    org = await q.insert_organization(
        conn,
        org_id=uuid.uuid4(),
        name=clean_name(name, field="name"),
        description=description.strip()[:1000],
        owner_id=actor.user_id,
    )
    owner = await q.upsert_member(
        conn, org_id=org.id, user_id=actor.user_id, role="owner", custom_role_id=None
    )
    await outbox.publish(
        conn,
        OrganizationCreated(
            organization_id=org.id,
            name=org.name,
            owner_id=actor.user_id,
            created_at=org.created_at,
        ),
        subject=str(org.id),
        source=SOURCE,
        organization_id=org.id,
    )
    await access.organization_changed(conn, org)
    await access.membership_changed(conn, owner)
    await _audit(conn, actor, org, "CREATE", {"name": org.name})
    return org


async def update(
    conn: asyncpg.Connection,
    actor: Actor,
    org_id: uuid.UUID,
    *,
    name: str | None,
    description: str | None,
) -> Organization:
    await get(conn, org_id, lock=True)
    org = await q.update_organization(
        conn,
        org_id,
        name=clean_name(name, field="name") if name is not None else None,
        description=description.strip()[:1000] if description is not None else None,
    )
    await access.organization_changed(conn, org)
    await _audit(conn, actor, org, "UPDATE", {"name": org.name, "description": org.description})
    return org


async def delete(conn: asyncpg.Connection, actor: Actor, org_id: uuid.UUID) -> None:
    await get(conn, org_id, lock=True)
    org = await q.delete_organization(conn, org_id)
    for token in await q.revoke_api_tokens_of_org(conn, org_id):
        await access.api_token_changed(conn, token)
    await outbox.publish(
        conn,
        OrganizationDeleted(organization_id=org_id, deleted_at=datetime.now(UTC)),
        subject=str(org_id),
        source=SOURCE,
        organization_id=org_id,
    )
    await access.organization_changed(conn, org)
    await _audit(conn, actor, org, "DELETE", None)


async def transfer(
    conn: asyncpg.Connection, actor: Actor, org_id: uuid.UUID, *, new_owner_id: uuid.UUID
) -> Organization:
    """The target member becomes owner; the previous owner (the actor) becomes admin."""
    await get(conn, org_id, lock=True)
    if actor.organization_role != "owner" or actor.user_id is None:
        raise Denied("OWNER_ONLY", "Only an owner can transfer ownership.")
    target = await q.member(conn, org_id, new_owner_id, lock=True)
    if target is None:
        raise Missing("MEMBER_NOT_FOUND", "The new owner must be a member of the organization.")
    if new_owner_id == actor.user_id:
        raise Clash("ALREADY_OWNER", "You already own this organization.")
    promoted = await q.set_member_role(
        conn, org_id=org_id, user_id=new_owner_id, role="owner", custom_role_id=None
    )
    demoted = await q.set_member_role(
        conn, org_id=org_id, user_id=actor.user_id, role="admin", custom_role_id=None
    )
    org = await q.set_owner(conn, org_id, new_owner_id)
    for row in (promoted, demoted):
        await access.membership_changed(conn, row)
    await access.organization_changed(conn, org)
    await audit.record(
        conn,
        producer=SOURCE,
        actor=actor,
        organization_id=org_id,
        action="UPDATE",
        target_type="TRANSFER_OWNERSHIP",
        target_id=org_id,
        target_name=org.name,
        change={"new_owner_id": str(new_owner_id)},
    )
    return org


async def _audit(
    conn: asyncpg.Connection,
    actor: Actor,
    org: Organization,
    action: str,
    change: dict[str, object] | None,
) -> None:
    await audit.record(
        conn,
        producer=SOURCE,
        actor=actor,
        organization_id=org.id,
        action=action,
        target_type="ORGANIZATION",
        target_id=org.id,
        target_name=org.name,
        change=change,
    )
