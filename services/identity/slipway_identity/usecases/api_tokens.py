"""API tokens: created with a role, shown once, stored as a SHA-256, revocable."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from slipway_contracts import api_tokens as fmt
from slipway_identity.db import queries as q
from slipway_identity.domain.accounts import clean_name
from slipway_identity.domain.api_tokens import ApiToken
from slipway_identity.domain.roles import check_can_grant
from slipway_identity.usecases import access
from slipway_identity.usecases.deps import SOURCE
from slipway_identity.usecases.members import resolve_role
from slipway_identity.usecases.organizations import get as get_org
from slipway_libs import audit
from slipway_libs.actor import Actor
from slipway_libs.errors import Missing


async def create(
    conn: asyncpg.Connection,
    actor: Actor,
    org_id: uuid.UUID,
    *,
    name: str,
    role: str,
    description: str = "",
) -> tuple[ApiToken, str]:
    await get_org(conn, org_id)
    builtin, custom = await resolve_role(conn, org_id, role)
    check_can_grant(actor_role=actor.organization_role, granted_role=builtin)
    token = fmt.generate()
    row = await q.insert_api_token(
        conn,
        token_id=uuid.uuid4(),
        org_id=org_id,
        name=clean_name(name, field="name"),
        description=description.strip()[:500],
        sha256=fmt.fingerprint(token),
        prefix=fmt.display_prefix(token),
        role=builtin,
        custom_role_id=custom,
        created_by=actor.user_id,
    )
    await access.api_token_changed(conn, row)
    await audit.record(
        conn,
        producer=SOURCE,
        actor=actor,
        organization_id=org_id,
        action="CREATE",
        target_type="API_TOKEN",
        target_id=row.id,
        target_name=row.name,
        change={"role": role},
    )
    return row, token


async def revoke(
    conn: asyncpg.Connection, actor: Actor, org_id: uuid.UUID, token_id: uuid.UUID
) -> None:
    row = await q.revoke_api_token(conn, org_id, token_id)
    if row is None:
        raise Missing("API_TOKEN_NOT_FOUND", "No such API token.")
    await access.api_token_changed(conn, row)
    await audit.record(
        conn,
        producer=SOURCE,
        actor=actor,
        organization_id=org_id,
        action="DELETE",
        target_type="API_TOKEN",
        target_id=token_id,
        target_name=row.name,
    )


async def record_usage(conn: asyncpg.Connection, used: dict[uuid.UUID, datetime]) -> None:
    if used:
        await q.touch_api_tokens(conn, used)
