"""Request and response bodies of the identity service's internal API.

Request bodies are ``slipway_libs.fields`` models: text fields typed by what they hold (names,
one-line values, free text, opaque values), numbers and booleans strict.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from slipway_contracts.events.identity import (
    ClusterGrant,
    ClusterPermission,
    EnvironmentMode,
    ProjectGrant,
    ProjectPermission,
)
from slipway_identity.domain.api_tokens import ApiToken
from slipway_identity.domain.invitations import Invitation
from slipway_identity.domain.organizations import Member, Organization
from slipway_identity.domain.read_models import AuditEvent, OrganizationOfUser
from slipway_identity.domain.roles import CustomRole
from slipway_identity.domain.users import User
from slipway_libs.fields import Id, Instant, Line, Model, Name, Text, Value

Body = Model


class SignUp(Body):
    email: Line = Field(max_length=254)
    password: Value = Field(max_length=256)
    name: Name = Field(max_length=200)


class Login(Body):
    email: Line = Field(max_length=254)
    password: Value = Field(max_length=256)


class Refresh(Body):
    refresh_token: Line = Field(max_length=200)


class OrganizationIn(Body):
    name: Name = Field(max_length=200)
    description: Text = Field(default="", max_length=1000)


class OrganizationPatch(Body):
    name: Name | None = Field(default=None, max_length=200)
    description: Text | None = Field(default=None, max_length=1000)


class Transfer(Body):
    user_id: Id


class Invite(Body):
    email: Line = Field(max_length=254)
    role: Line = Field(max_length=64)


class AcceptInvitation(Body):
    # the invitation link's token; optional here so that its absence answers a stable code
    token: Line | None = Field(default=None, max_length=200)


class RoleChange(Body):
    role: Line = Field(max_length=64)


class _ClusterGrantIn(Body):
    cluster_id: Id
    permission: ClusterPermission


class _ProjectGrantIn(Body):
    project_id: Id
    is_admin: bool = False
    environments: dict[EnvironmentMode, ProjectPermission] = Field(default_factory=dict)


def _strictly(model: type[Body]) -> BeforeValidator:
    """The contract's grant models are lax (events are trusted); a request's grant is first
    validated by the strict twin, so that ``"is_admin": "yes"`` or an unknown field is refused."""
    return BeforeValidator(lambda value: model.model_validate(value).model_dump())


ClusterGrantIn = Annotated[ClusterGrant, _strictly(_ClusterGrantIn)]
ProjectGrantIn = Annotated[ProjectGrant, _strictly(_ProjectGrantIn)]


class CustomRoleIn(Body):
    name: Name = Field(max_length=100)
    description: Text = Field(default="", max_length=500)
    clusters: list[ClusterGrantIn] = Field(default_factory=list, max_length=500)
    projects: list[ProjectGrantIn] = Field(default_factory=list, max_length=500)


class CustomRolePatch(Body):
    name: Name | None = Field(default=None, max_length=100)
    description: Text | None = Field(default=None, max_length=500)
    clusters: list[ClusterGrantIn] | None = Field(default=None, max_length=500)
    projects: list[ProjectGrantIn] | None = Field(default=None, max_length=500)


class ApiTokenIn(Body):
    name: Name = Field(max_length=100)
    role: Line = Field(max_length=64)
    description: Text = Field(default="", max_length=500)


class TokenUsage(Body):
    used: dict[Id, Instant] = Field(max_length=10_000)


def user_out(user: User) -> dict[str, Any]:
    return {
        "id": str(user.id),
        "email": user.email,
        "name": user.name,
        "created_at": user.created_at.isoformat(),
    }


def organization_out(org: Organization) -> dict[str, Any]:
    return {
        "id": str(org.id),
        "name": org.name,
        "description": org.description,
        "owner_id": str(org.owner_id),
        "created_at": org.created_at.isoformat(),
        "updated_at": org.updated_at.isoformat(),
    }


def organization_of_user_out(listed: OrganizationOfUser) -> dict[str, Any]:
    return organization_out(listed.organization) | {"role": listed.role_name}


def member_out(
    member: Member, *, email: str | None = None, name: str | None = None
) -> dict[str, Any]:
    """``email`` and ``name`` where the answer lists members (null after a change)."""
    return {
        "user_id": str(member.user_id),
        "email": email,
        "name": name,
        "role": member.role_name,
        "role_kind": "builtin" if member.role else "custom",
        "joined_at": member.created_at.isoformat(),
    }


def invitation_out(invitation: Invitation, status: str) -> dict[str, Any]:
    return {
        "id": str(invitation.id),
        "organization_id": str(invitation.organization_id),
        "email": invitation.email,
        "role": invitation.role_name,
        "status": status,
        "expires_at": invitation.expires_at.isoformat(),
        "created_at": invitation.created_at.isoformat(),
    }


def custom_role_out(role: CustomRole) -> dict[str, Any]:
    return {
        "id": str(role.id),
        "kind": "custom",
        "name": role.name,
        "description": role.description,
        "clusters": role.clusters,
        "projects": role.projects,
        "created_at": role.created_at.isoformat(),
    }


def api_token_out(token: ApiToken) -> dict[str, Any]:
    last = token.last_used_at
    return {
        "id": str(token.id),
        "name": token.name,
        "description": token.description,
        "role": token.role_name,
        "prefix": token.token_prefix,
        "created_at": token.created_at.isoformat(),
        "last_used_at": last.isoformat() if last else None,
    }


def audit_out(event: AuditEvent) -> dict[str, Any]:
    def opt(value: Any) -> Any:
        return str(value) if value is not None else None

    return {
        "id": str(event.id),
        "occurred_at": event.occurred_at.isoformat(),
        "source": event.source,
        "actor": {"type": event.actor_type, "id": event.actor_id, "name": event.actor_name},
        "origin": event.origin,
        "action": event.action,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "target_name": event.target_name,
        "project_id": opt(event.project_id),
        "environment_id": opt(event.environment_id),
        "change": event.change,
    }
