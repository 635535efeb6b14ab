"""What the identity service's internal routes answer (``slipway_libs.openapi``): the shapes
``schemas.*_out`` build, declared for the public OpenAPI document."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import Field

from slipway_contracts.events.identity import ClusterGrant, ProjectGrant
from slipway_libs.openapi import Answer, Answers, Time, page_of


class UserOut(Answer):
    id: uuid.UUID
    email: str = Field(examples=["ada@example.com"])
    name: str = Field(examples=["Ada"])
    created_at: Time


class OrganizationOut(Answer):
    id: uuid.UUID
    name: str = Field(examples=["Acme"])
    description: str
    owner_id: uuid.UUID
    created_at: Time
    updated_at: Time


class OrganizationOfUserOut(OrganizationOut):
    role: str = Field(description="Your role in it: a built-in role's name or a custom role's.")


class InvitationOut(Answer):
    id: uuid.UUID
    organization_id: uuid.UUID
    email: str
    role: str
    status: str = Field(examples=["pending"])
    expires_at: Time
    created_at: Time


class InvitationOfUserOut(InvitationOut):
    organization_name: str


class ProfileOut(UserOut):
    organizations: list[OrganizationOfUserOut]
    invitations: list[InvitationOfUserOut]


class SessionOut(Answer):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"]
    expires_in: int = Field(description="Seconds the access token is valid.")


class MemberOut(Answer):
    user_id: uuid.UUID
    email: str | None = Field(description="In lists; null in the answer to a change.")
    name: str | None
    role: str
    role_kind: Literal["builtin", "custom"]
    joined_at: Time


class AcceptedOut(MemberOut):
    organization_id: uuid.UUID


class InvitedOut(InvitationOut):
    delivery: str = Field(description="`mail`, or `inviter` when no mailer is configured.")
    accept_token: str | None = Field(
        default=None, description="Only with delivery `inviter`: shown this once."
    )


class RoleOut(Answer):
    id: str = Field(description="A built-in role's name, or a custom role's id.")
    kind: Literal["builtin", "custom"]
    name: str
    description: str
    clusters: list[ClusterGrant] | None = None
    projects: list[ProjectGrant] | None = None
    created_at: Time | None = None


class CustomRoleOut(Answer):
    id: uuid.UUID
    kind: Literal["custom"]
    name: str
    description: str
    clusters: list[ClusterGrant]
    projects: list[ProjectGrant]
    created_at: Time


class ApiTokenOut(Answer):
    id: uuid.UUID
    name: str
    description: str
    role: str
    prefix: str
    created_at: Time
    last_used_at: Time | None


class CreatedApiTokenOut(ApiTokenOut):
    token: str = Field(description="The token itself: shown this once.")


class AuditActor(Answer):
    type: str
    id: str | None
    name: str | None


class AuditEventOut(Answer):
    id: uuid.UUID
    occurred_at: Time
    source: str
    actor: AuditActor
    origin: str | None
    action: str
    target_type: str | None
    target_id: str | None
    target_name: str | None
    project_id: uuid.UUID | None
    environment_id: uuid.UUID | None
    change: Any


I = "/internal/v1"  # noqa: E741
ORG = f"{I}/organizations/{{org_id}}"
ANSWERS: Answers = {
    f"POST {I}/users": UserOut,
    f"POST {I}/sessions": SessionOut,
    f"POST {I}/sessions/refresh": SessionOut,
    f"GET {I}/users/{{user_id}}": ProfileOut,
    f"GET {I}/users/{{user_id}}/organizations": page_of(OrganizationOfUserOut),
    f"POST {I}/organizations": OrganizationOut,
    f"GET {ORG}": OrganizationOut,
    f"PATCH {ORG}": OrganizationOut,
    f"POST {ORG}/transfer-ownership": OrganizationOut,
    f"GET {ORG}/members": page_of(MemberOut),
    f"POST {ORG}/members": InvitedOut,
    f"PATCH {ORG}/members/{{user_id}}": MemberOut,
    f"GET {ORG}/invitations": page_of(InvitationOut),
    f"POST {I}/invitations/{{invitation_id}}/accept": AcceptedOut,
    f"GET {ORG}/roles": page_of(RoleOut),
    f"POST {ORG}/roles": CustomRoleOut,
    f"GET {ORG}/roles/{{role_id}}": CustomRoleOut,
    f"PATCH {ORG}/roles/{{role_id}}": CustomRoleOut,
    f"GET {ORG}/api-tokens": page_of(ApiTokenOut),
    f"POST {ORG}/api-tokens": CreatedApiTokenOut,
    f"GET {ORG}/audit-events": page_of(AuditEventOut),
}
