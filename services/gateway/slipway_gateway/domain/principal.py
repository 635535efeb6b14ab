"""Who is calling: a signed-in user (session token) or an API token (bound to one organization)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class UserPrincipal:
    user_id: uuid.UUID
    session_id: uuid.UUID


@dataclass(frozen=True)
class TokenPrincipal:
    token_id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    role: str | None
    custom_role_id: uuid.UUID | None


Principal = UserPrincipal | TokenPrincipal
