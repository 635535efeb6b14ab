"""What the identity's read queries (``db.queries``) answer besides the aggregates: rows joined
for one screen of the API, and the audit log's entries. Pure values: no I/O; here rather than
next to the queries because the routes shape them into answers and do not reach ``db``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slipway_identity.domain.invitations import Invitation
from slipway_identity.domain.organizations import Member, Organization
from slipway_identity.domain.roles import role_reference


@dataclass(frozen=True, slots=True, kw_only=True)
class OrganizationOfUser:
    """An organization a user belongs to, with the user's role in it."""

    organization: Organization
    role: str | None
    custom_role_id: uuid.UUID | None

    @property
    def role_name(self) -> str:
        return role_reference(self.role, self.custom_role_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberListing:
    """A member with the user's email and name."""

    member: Member
    email: str
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class InvitationToUser:
    """A pending invitation addressed to a user, with the inviting organization's name."""

    invitation: Invitation
    organization_name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEvent:
    id: uuid.UUID
    organization_id: uuid.UUID
    occurred_at: datetime
    source: str
    actor_type: str
    actor_id: str | None
    actor_name: str | None
    origin: str
    action: str
    target_type: str
    target_id: str
    target_name: str | None
    project_id: uuid.UUID | None
    environment_id: uuid.UUID | None
    change: Any
