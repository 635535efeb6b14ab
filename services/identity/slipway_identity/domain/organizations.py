"""Organizations and their members, as the repositories answer them (``db.queries``).

``version`` is the ``access_version`` of the row's last change: the gateway's projection keeps
the newest. Pure values: no I/O."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from slipway_identity.domain.roles import role_reference


@dataclass(frozen=True, slots=True, kw_only=True)
class Organization:
    id: uuid.UUID
    name: str
    description: str
    owner_id: uuid.UUID
    version: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Member:
    """A user's membership: a built-in ``role`` or a ``custom_role_id``, never both."""

    organization_id: uuid.UUID
    user_id: uuid.UUID
    role: str | None
    custom_role_id: uuid.UUID | None
    version: int
    created_at: datetime
    removed_at: datetime | None

    @property
    def role_name(self) -> str:
        return role_reference(self.role, self.custom_role_id)
