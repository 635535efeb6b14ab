"""The identity service's internal HTTP API (called by the gateway, which authorizes first).

Routes are thin: parse, open the transaction, call a use case, shape the answer.

Creating an organization or a custom role honours an ``Idempotency-Key``
(``slipway_libs.idempotency``). Not sign-up (no principal to scope the key to: anonymous clients
would share keys) nor API tokens and invitations (their answer carries a secret shown once,
which a stored answer would keep in clear).
"""

from __future__ import annotations

import functools
import uuid
from datetime import datetime
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, Query, Request, Response

from slipway_identity.api import schemas as s
from slipway_identity.domain.roles import BUILTIN_ROLES, DESCRIPTIONS
from slipway_identity.usecases import (
    access,
    accounts,
    api_tokens,
    audit_log,
    invitations,
    members,
    reads,
    roles,
)
from slipway_identity.usecases import organizations as orgs
from slipway_identity.usecases.deps import Deps
from slipway_libs import db
from slipway_libs.actor import Actor, InternalCallers, actor_from, internal_guard
from slipway_libs.errors import Denied, Missing, Unauthenticated
from slipway_libs.http import ChangesRoute
from slipway_libs.idempotency import Once
from slipway_libs.tenancy import tenant_scope

CurrentActor = Annotated[Actor, Depends(actor_from)]


def build_router(pool: asyncpg.Pool, deps: Deps, internal_callers: InternalCallers) -> APIRouter:
    router = APIRouter(
        prefix="/internal/v1",
        dependencies=[
            Depends(internal_guard(internal_callers)),
            Depends(tenant_scope(required=False)),
        ],
        route_class=ChangesRoute,
    )

    tx = functools.partial(db.transaction, pool)
    rd = functools.partial(db.reading, pool)  # reads: no BEGIN/COMMIT round trips

    _accounts(router, tx, rd, deps)
    _organizations(router, tx, rd)
    _members(router, tx, rd, deps)
    _roles(router, tx, rd)
    _tokens(router, tx, rd)
    _audit(router, rd)

    @router.get("/signing-keys")
    async def signing_keys() -> dict[str, Any]:
        async with tx() as conn:
            return await access.signing_keys_state(conn)

    @router.get("/access-snapshot")
    async def snapshot() -> dict[str, Any]:
        async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
            return await access.snapshot(conn)

    return router


def _user(actor: Actor) -> uuid.UUID:
    if actor.type != "user" or actor.user_id is None:
        raise Denied("USERS_ONLY", "This needs a signed-in user, not an API token.")
    return actor.user_id


def _accounts(router: APIRouter, tx: Any, rd: Any, deps: Deps) -> None:
    @router.post("/users", status_code=201)
    async def sign_up(body: s.SignUp) -> dict[str, Any]:
        async with tx() as conn:
            user = await accounts.sign_up(
                conn, deps, email=body.email, password=body.password, name=body.name
            )
        return s.user_out(user)

    @router.post("/sessions")
    async def login(body: s.Login, request: Request) -> dict[str, Any]:
        address = request.headers.get("x-slipway-client-address", "unknown")[:100]
        async with tx() as conn:
            await accounts.check_throttle(conn, deps, email=body.email, address=address)
        async with tx() as conn:  # committed on its own: failed attempts must count
            user = await accounts.verify_credentials(
                conn, deps, email=body.email, password=body.password, address=address
            )
        if user is None:
            raise Unauthenticated("INVALID_CREDENTIALS", "Wrong email or password.")
        async with tx() as conn:
            tokens = await accounts.open_session(conn, deps, user.id)
        return tokens.body()

    @router.post("/sessions/refresh")
    async def refresh(body: s.Refresh) -> dict[str, Any]:
        try:
            async with tx() as conn:
                tokens = await accounts.refresh(conn, deps, refresh_token=body.refresh_token)
        except Unauthenticated:
            # a reused token revoked its session: that must survive the refusal
            async with tx() as conn:
                await accounts.revoke_if_reused(conn, refresh_token=body.refresh_token)
            raise
        return tokens.body()

    @router.delete("/sessions/{session_id}", status_code=204)
    async def logout(session_id: uuid.UUID, actor: CurrentActor) -> Response:
        async with tx() as conn:
            await accounts.logout(conn, session_id=session_id, user_id=_user(actor))
        return Response(status_code=204)

    @router.get("/users/{user_id}")
    async def me(user_id: uuid.UUID) -> dict[str, Any]:
        async with rd() as conn:
            profile = await reads.profile(conn, user_id)
        if profile is None:
            raise Missing("USER_NOT_FOUND", "No such user.")
        user, organizations, invitations = profile
        return {
            **s.user_out(user),
            "organizations": [s.organization_of_user_out(o) for o in organizations],
            "invitations": [
                s.invitation_out(i.invitation, "pending")
                | {"organization_name": i.organization_name}
                for i in invitations
            ],
        }

    @router.post("/keys/rotate")
    async def rotate(revoke_previous: bool = False) -> dict[str, str]:
        async with tx() as conn:
            kid = await accounts.rotate_signing_key(conn, deps, revoke_previous=revoke_previous)
        return {"kid": kid}


def _organizations(router: APIRouter, tx: Any, rd: Any) -> None:
    @router.get("/users/{user_id}/organizations")
    async def mine(user_id: uuid.UUID) -> dict[str, Any]:
        async with rd() as conn:
            rows = await reads.organizations_of(conn, user_id)
        return {"items": [s.organization_of_user_out(r) for r in rows], "next_cursor": None}

    @router.post("/organizations", status_code=201)
    async def create(body: s.OrganizationIn, actor: CurrentActor, once: Once) -> dict[str, Any]:
        async def work(conn: asyncpg.Connection) -> dict[str, Any]:
            org = await orgs.create(conn, actor, name=body.name, description=body.description)
            return s.organization_out(org)

        return await once.run(tx, work)

    @router.get("/organizations/{org_id}")
    async def read(org_id: uuid.UUID) -> dict[str, Any]:
        async with rd() as conn:
            return s.organization_out(await orgs.get(conn, org_id))

    @router.patch("/organizations/{org_id}")
    async def update(
        org_id: uuid.UUID, body: s.OrganizationPatch, actor: CurrentActor
    ) -> dict[str, Any]:
        async with tx() as conn:
            org = await orgs.update(
                conn, actor, org_id, name=body.name, description=body.description
            )
        return s.organization_out(org)

    @router.delete("/organizations/{org_id}", status_code=204)
    async def delete(org_id: uuid.UUID, actor: CurrentActor) -> Response:
        async with tx() as conn:
            await orgs.delete(conn, actor, org_id)
        return Response(status_code=204)

    @router.post("/organizations/{org_id}/transfer-ownership")
    async def transfer(org_id: uuid.UUID, body: s.Transfer, actor: CurrentActor) -> dict[str, Any]:
        async with tx() as conn:
            org = await orgs.transfer(conn, actor, org_id, new_owner_id=body.user_id)
        return s.organization_out(org)


def _members(router: APIRouter, tx: Any, rd: Any, deps: Deps) -> None:
    @router.get("/organizations/{org_id}/members")
    async def list_members(org_id: uuid.UUID) -> dict[str, Any]:
        async with rd() as conn:
            await orgs.get(conn, org_id)
            rows = await reads.members_of(conn, org_id)
        items = [s.member_out(r.member, email=r.email, name=r.name) for r in rows]
        return {"items": items, "next_cursor": None}

    @router.post("/organizations/{org_id}/members", status_code=201)
    async def invite(org_id: uuid.UUID, body: s.Invite, actor: CurrentActor) -> dict[str, Any]:
        async with tx() as conn:
            invitation = await invitations.invite(
                conn, deps, actor, org_id, email=body.email, role=body.role
            )
        delivery = await invitations.deliver(deps, invitation)  # after the commit
        invited = invitation.invitation
        out = s.invitation_out(invited, invitations.invitation_status(invited))
        out["delivery"] = delivery
        if delivery == "inviter":  # no mailer: shown this once, for the inviter to pass on
            out["accept_token"] = invitation.token
        return out

    @router.patch("/organizations/{org_id}/members/{user_id}")
    async def change_role(
        org_id: uuid.UUID, user_id: uuid.UUID, body: s.RoleChange, actor: CurrentActor
    ) -> dict[str, Any]:
        async with tx() as conn:
            row = await members.change_role(conn, actor, org_id, user_id, role=body.role)
        return s.member_out(row)

    @router.delete("/organizations/{org_id}/members/{user_id}", status_code=204)
    async def remove(org_id: uuid.UUID, user_id: uuid.UUID, actor: CurrentActor) -> Response:
        async with tx() as conn:
            await members.remove(conn, actor, org_id, user_id)
        return Response(status_code=204)

    @router.get("/organizations/{org_id}/invitations")
    async def list_invitations(org_id: uuid.UUID) -> dict[str, Any]:
        async with rd() as conn:
            await orgs.get(conn, org_id)
            rows = await reads.invitations_of(conn, org_id)
        return {
            "items": [s.invitation_out(r, invitations.invitation_status(r)) for r in rows],
            "next_cursor": None,
        }

    @router.delete("/organizations/{org_id}/invitations/{invitation_id}", status_code=204)
    async def revoke_invitation(
        org_id: uuid.UUID, invitation_id: uuid.UUID, actor: CurrentActor
    ) -> Response:
        async with tx() as conn:
            await invitations.revoke(conn, actor, org_id, invitation_id)
        return Response(status_code=204)

    @router.post("/invitations/{invitation_id}/accept")
    async def accept(
        invitation_id: uuid.UUID, actor: CurrentActor, body: s.AcceptInvitation | None = None
    ) -> dict[str, Any]:
        _user(actor)
        token = body.token if body is not None else None
        async with tx() as conn:
            row = await invitations.accept(conn, actor, invitation_id, token=token)
        return s.member_out(row) | {"organization_id": str(row.organization_id)}


def _roles(router: APIRouter, tx: Any, rd: Any) -> None:
    @router.get("/organizations/{org_id}/roles")
    async def list_roles(org_id: uuid.UUID) -> dict[str, Any]:
        async with rd() as conn:
            await orgs.get(conn, org_id)
            custom = await reads.custom_roles_of(conn, org_id)
        builtin = [
            {"id": name, "kind": "builtin", "name": name, "description": DESCRIPTIONS[name]}
            for name in BUILTIN_ROLES
        ]
        return {"items": builtin + [s.custom_role_out(r) for r in custom], "next_cursor": None}

    @router.post("/organizations/{org_id}/roles", status_code=201)
    async def create(
        org_id: uuid.UUID, body: s.CustomRoleIn, actor: CurrentActor, once: Once
    ) -> dict[str, Any]:
        async def work(conn: asyncpg.Connection) -> dict[str, Any]:
            row = await roles.create(
                conn,
                actor,
                org_id,
                name=body.name,
                description=body.description,
                clusters=body.clusters,
                projects=body.projects,
            )
            return s.custom_role_out(row)

        return await once.run(tx, work)

    @router.get("/organizations/{org_id}/roles/{role_id}")
    async def read(org_id: uuid.UUID, role_id: uuid.UUID) -> dict[str, Any]:
        async with rd() as conn:
            return s.custom_role_out(await roles.get(conn, org_id, role_id))

    @router.patch("/organizations/{org_id}/roles/{role_id}")
    async def update(
        org_id: uuid.UUID, role_id: uuid.UUID, body: s.CustomRolePatch, actor: CurrentActor
    ) -> dict[str, Any]:
        async with tx() as conn:
            row = await roles.update(
                conn,
                actor,
                org_id,
                role_id,
                name=body.name,
                description=body.description,
                clusters=body.clusters,
                projects=body.projects,
            )
        return s.custom_role_out(row)

    @router.delete("/organizations/{org_id}/roles/{role_id}", status_code=204)
    async def delete(org_id: uuid.UUID, role_id: uuid.UUID, actor: CurrentActor) -> Response:
        async with tx() as conn:
            await roles.delete(conn, actor, org_id, role_id)
        return Response(status_code=204)


def _tokens(router: APIRouter, tx: Any, rd: Any) -> None:
    @router.get("/organizations/{org_id}/api-tokens")
    async def list_tokens(org_id: uuid.UUID) -> dict[str, Any]:
        async with rd() as conn:
            await orgs.get(conn, org_id)
            rows = await reads.api_tokens_of(conn, org_id)
        return {"items": [s.api_token_out(r) for r in rows], "next_cursor": None}

    @router.post("/organizations/{org_id}/api-tokens", status_code=201)
    async def create(org_id: uuid.UUID, body: s.ApiTokenIn, actor: CurrentActor) -> dict[str, Any]:
        async with tx() as conn:
            row, token = await api_tokens.create(
                conn, actor, org_id, name=body.name, role=body.role, description=body.description
            )
        return s.api_token_out(row) | {"token": token}

    @router.delete("/organizations/{org_id}/api-tokens/{token_id}", status_code=204)
    async def revoke(org_id: uuid.UUID, token_id: uuid.UUID, actor: CurrentActor) -> Response:
        async with tx() as conn:
            await api_tokens.revoke(conn, actor, org_id, token_id)
        return Response(status_code=204)

    @router.post("/api-tokens/usage", status_code=204)
    async def usage(body: s.TokenUsage) -> Response:
        async with tx() as conn:
            await api_tokens.record_usage(conn, body.used)
        return Response(status_code=204)


def _audit(router: APIRouter, rd: Any) -> None:
    @router.get("/organizations/{org_id}/audit-events")
    async def audit_events(
        org_id: uuid.UUID,
        from_: Annotated[datetime | None, Query(alias="from")] = None,
        to: datetime | None = None,
        actor_id: Annotated[str | None, Query(max_length=100)] = None,
        target_type: Annotated[str | None, Query(max_length=100)] = None,
        target_id: Annotated[str | None, Query(max_length=100)] = None,
        action: Annotated[str | None, Query(alias="type", max_length=100)] = None,
        origin: Annotated[str | None, Query(max_length=20)] = None,
        project_id: uuid.UUID | None = None,
        environment_id: uuid.UUID | None = None,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> dict[str, Any]:
        filters = {
            "from": from_,
            "to": to,
            "actor_id": actor_id,
            "target_type": target_type,
            "target_id": target_id,
            "action": action,
            "origin": origin,
            "project_id": project_id,
            "environment_id": environment_id,
        }
        async with rd() as conn:
            await orgs.get(conn, org_id)
            rows, next_cursor = await audit_log.page(
                conn, org_id, filters=filters, cursor=cursor, limit=limit
            )
        return {"items": [s.audit_out(r) for r in rows], "next_cursor": next_cursor}
