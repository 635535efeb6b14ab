"""Read-only queries behind the API's lists and profile."""

from __future__ import annotations

import uuid

import asyncpg

from slipway_identity.db import queries as q
from slipway_identity.domain.api_tokens import ApiToken
from slipway_identity.domain.invitations import Invitation
from slipway_identity.domain.read_models import InvitationToUser, MemberListing, OrganizationOfUser
from slipway_identity.domain.roles import CustomRole
from slipway_identity.domain.users import User


async def profile(
    conn: asyncpg.Connection, user_id: uuid.UUID
) -> tuple[User, list[OrganizationOfUser], list[InvitationToUser]] | None:
    user = await q.user_by_id(conn, user_id)
    if user is None:
        return None
    return (
        user,
        await q.organizations_of_user(conn, user_id),
        await q.invitations_for_email(conn, user.email),
    )


async def organizations_of(
    conn: asyncpg.Connection, user_id: uuid.UUID
) -> list[OrganizationOfUser]:
    return await q.organizations_of_user(conn, user_id)


async def members_of(conn: asyncpg.Connection, org_id: uuid.UUID) -> list[MemberListing]:
    return await q.members(conn, org_id)


async def invitations_of(conn: asyncpg.Connection, org_id: uuid.UUID) -> list[Invitation]:
    return await q.invitations(conn, org_id)


async def custom_roles_of(conn: asyncpg.Connection, org_id: uuid.UUID) -> list[CustomRole]:
    return await q.custom_roles(conn, org_id)


async def api_tokens_of(conn: asyncpg.Connection, org_id: uuid.UUID) -> list[ApiToken]:
    return await q.api_tokens(conn, org_id)
