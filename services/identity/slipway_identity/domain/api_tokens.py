"""API tokens, as the repositories answer them (``db.queries``): only the SHA-256 of the secret
is stored, with a short prefix to recognize it by. Pure values: no I/O."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from slipway_identity.domain.roles import role_reference


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiToken:
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    description: str
    token_sha256: str
    token_prefix: str
    role: str | None
    custom_role_id: uuid.UUID | None
    version: int
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def role_name(self) -> str:
        return role_reference(self.role, self.custom_role_id)
