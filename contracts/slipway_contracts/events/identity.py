"""Events produced by the identity service.

``identity.access.v1`` carries the full current state of everything the gateway needs to decide a
request (memberships, custom roles, API tokens, revoked sessions, signing keys), each with a
monotonic ``version`` so that a projection can apply them idempotently and in any interleaving
with a snapshot. Keyed by organization id (user id for sessions, ``signing-keys`` for keys).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from slipway_contracts.envelope import EventPayload

USER_TOPIC = "identity.user.v1"
ORGANIZATION_TOPIC = "identity.organization.v1"
ACCESS_TOPIC = "identity.access.v1"

BuiltinRole = Literal["owner", "admin", "devops", "viewer", "billing"]
EnvironmentMode = Literal["production", "staging", "development", "preview"]
ProjectPermission = Literal["no_access", "viewer", "deployer", "manager"]
ClusterPermission = Literal["viewer", "env_creator", "admin"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class UserSignedUp(EventPayload):
    event_type = "identity.UserSignedUp"
    topic = USER_TOPIC

    user_id: uuid.UUID
    email: str
    name: str
    created_at: datetime


class OrganizationCreated(EventPayload):
    event_type = "identity.OrganizationCreated"
    topic = ORGANIZATION_TOPIC

    organization_id: uuid.UUID
    name: str
    owner_id: uuid.UUID
    created_at: datetime


class OrganizationDeleted(EventPayload):
    event_type = "identity.OrganizationDeleted"
    topic = ORGANIZATION_TOPIC

    organization_id: uuid.UUID
    deleted_at: datetime


class OrganizationChanged(EventPayload):
    """An organization's current state (for access projections); ``deleted`` is a tombstone."""

    event_type = "identity.OrganizationChanged"
    topic = ACCESS_TOPIC

    organization_id: uuid.UUID
    name: str
    owner_id: uuid.UUID | None = None
    deleted: bool = False
    version: int


class MembershipChanged(EventPayload):
    """A member's current role in an organization; ``removed`` means no longer a member."""

    event_type = "identity.MembershipChanged"
    topic = ACCESS_TOPIC

    organization_id: uuid.UUID
    user_id: uuid.UUID
    role: BuiltinRole | None = None
    custom_role_id: uuid.UUID | None = None
    removed: bool = False
    version: int


class ClusterGrant(_Frozen):
    cluster_id: uuid.UUID
    permission: ClusterPermission


class ProjectGrant(_Frozen):
    project_id: uuid.UUID
    is_admin: bool = False
    environments: dict[EnvironmentMode, ProjectPermission] = {}


class CustomRoleChanged(EventPayload):
    """A custom role's current grants; ``deleted`` is a tombstone."""

    event_type = "identity.CustomRoleChanged"
    topic = ACCESS_TOPIC

    role_id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    clusters: list[ClusterGrant] = []
    projects: list[ProjectGrant] = []
    deleted: bool = False
    version: int


class ApiTokenChanged(EventPayload):
    """An API token's current state, by the SHA-256 of the token (never the token itself)."""

    event_type = "identity.ApiTokenChanged"
    topic = ACCESS_TOPIC

    token_id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    token_sha256: str
    role: BuiltinRole | None = None
    custom_role_id: uuid.UUID | None = None
    revoked: bool = False
    version: int


class SessionRevoked(EventPayload):
    """A session ended (logout, revocation, refresh-token reuse): refuse its access tokens."""

    event_type = "identity.SessionRevoked"
    topic = ACCESS_TOPIC

    session_id: uuid.UUID
    user_id: uuid.UUID
    expires_at: datetime


class SigningKey(_Frozen):
    kid: str
    status: Literal["active", "retired", "revoked"]
    jwk: dict[str, Any]


class SigningKeysChanged(EventPayload):
    """The complete set of session-token verification keys; a revoked key verifies nothing."""

    event_type = "identity.SigningKeysChanged"
    topic = ACCESS_TOPIC

    keys: list[SigningKey]
    version: int


PAYLOADS: tuple[type[EventPayload], ...] = (
    UserSignedUp,
    OrganizationCreated,
    OrganizationDeleted,
    OrganizationChanged,
    MembershipChanged,
    CustomRoleChanged,
    ApiTokenChanged,
    SessionRevoked,
    SigningKeysChanged,
)
