"""The public route table: every public route, its action, and where it goes.

Each route declares who may call it: ``public`` (no credentials), ``user`` (a signed-in user,
not an API token), or ``member`` (a principal of the organization named in the path, allowed
``action`` by the policy). A route with ``access="member"`` and no action fails the test suite,
as does any public route registered outside this table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from slipway_gateway.domain.policy import Action

Access = Literal["public", "user", "member"]


@dataclass(frozen=True)
class RouteSpec:
    method: str
    path: str
    upstream: str
    upstream_path: str
    summary: str
    access: Access = "member"
    action: Action | None = None
    success: int = 200
    # for the test matrix: calling it with an allowed principal destroys its organization
    destructive: bool = False
    upstream_method: str | None = None  # when the internal API uses another verb


ORG = "/organizations/{org}"
I = "/internal/v1"  # noqa: E741


def _identity(
    method: str,
    path: str,
    summary: str,
    action: Action | None,
    *,
    access: Access = "member",
    upstream_path: str | None = None,
    success: int = 200,
    destructive: bool = False,
    upstream_method: str | None = None,
) -> RouteSpec:
    return RouteSpec(
        method=method,
        path=path,
        upstream="identity",
        upstream_path=upstream_path or I + path,
        summary=summary,
        access=access,
        action=action,
        success=success,
        destructive=destructive,
        upstream_method=upstream_method,
    )


ROUTES: tuple[RouteSpec, ...] = (
    _identity(
        "POST",
        "/auth/signup",
        "Create an account",
        None,
        access="public",
        upstream_path=f"{I}/users",
        success=201,
    ),
    _identity(
        "POST",
        "/auth/login",
        "Sign in: session and refresh tokens",
        None,
        access="public",
        upstream_path=f"{I}/sessions",
    ),
    _identity(
        "POST",
        "/auth/refresh",
        "Exchange a refresh token for new tokens",
        None,
        access="public",
        upstream_path=f"{I}/sessions/refresh",
    ),
    _identity(
        "POST",
        "/auth/logout",
        "End this session",
        None,
        access="user",
        upstream_path=f"{I}/sessions/{{session_id}}",
        success=204,
        upstream_method="DELETE",
    ),
    _identity(
        "GET",
        "/me",
        "The signed-in user, their organizations and invitations",
        None,
        access="user",
        upstream_path=f"{I}/users/{{user_id}}",
    ),
    _identity(
        "GET",
        "/organizations",
        "Organizations you belong to",
        None,
        access="user",
        upstream_path=f"{I}/users/{{user_id}}/organizations",
    ),
    _identity(
        "POST",
        "/organizations",
        "Create an organization (you become its owner)",
        None,
        access="user",
        success=201,
    ),
    _identity(
        "POST", "/invitations/{invitation}/accept", "Accept an invitation", None, access="user"
    ),
    _identity("GET", ORG, "Read an organization", Action.ORG_READ),
    _identity("PATCH", ORG, "Update an organization", Action.ORG_UPDATE),
    _identity(
        "DELETE", ORG, "Delete an organization", Action.ORG_DELETE, success=204, destructive=True
    ),
    _identity(
        "POST", f"{ORG}/transfer-ownership", "Transfer ownership to a member", Action.ORG_TRANSFER
    ),
    _identity("GET", f"{ORG}/members", "List members", Action.MEMBERS_READ),
    _identity(
        "POST", f"{ORG}/members", "Invite a member by email", Action.MEMBERS_MANAGE, success=201
    ),
    _identity("PATCH", f"{ORG}/members/{{user}}", "Change a member's role", Action.MEMBERS_MANAGE),
    _identity(
        "DELETE", f"{ORG}/members/{{user}}", "Remove a member", Action.MEMBERS_MANAGE, success=204
    ),
    _identity("GET", f"{ORG}/invitations", "List pending invitations", Action.MEMBERS_MANAGE),
    _identity(
        "DELETE",
        f"{ORG}/invitations/{{invitation}}",
        "Revoke an invitation",
        Action.MEMBERS_MANAGE,
        success=204,
    ),
    _identity("GET", f"{ORG}/roles", "List built-in and custom roles", Action.ROLES_READ),
    _identity("POST", f"{ORG}/roles", "Create a custom role", Action.ROLES_MANAGE, success=201),
    _identity("GET", f"{ORG}/roles/{{role}}", "Read a custom role", Action.ROLES_READ),
    _identity("PATCH", f"{ORG}/roles/{{role}}", "Update a custom role", Action.ROLES_MANAGE),
    _identity(
        "DELETE", f"{ORG}/roles/{{role}}", "Delete a custom role", Action.ROLES_MANAGE, success=204
    ),
    _identity("GET", f"{ORG}/api-tokens", "List API tokens", Action.API_TOKENS_MANAGE),
    _identity(
        "POST",
        f"{ORG}/api-tokens",
        "Create an API token (shown once)",
        Action.API_TOKENS_MANAGE,
        success=201,
    ),
    _identity(
        "DELETE",
        f"{ORG}/api-tokens/{{token}}",
        "Revoke an API token",
        Action.API_TOKENS_MANAGE,
        success=204,
    ),
    _identity("GET", f"{ORG}/audit-events", "The organization's audit log", Action.AUDIT_READ),
)
