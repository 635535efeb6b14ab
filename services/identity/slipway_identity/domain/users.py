"""Users, their sessions and the keys that sign session tokens, as the repositories answer
them (``db.queries``). Pure values: no I/O."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class User:
    id: uuid.UUID
    email: str  # normalized (``accounts.normalize_email``)
    name: str
    password_hash: str
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Session:
    id: uuid.UUID
    user_id: uuid.UUID
    expires_at: datetime
    revoked_at: datetime | None

    def is_live(self, now: datetime) -> bool:
        return self.revoked_at is None and self.expires_at > now


@dataclass(frozen=True, slots=True, kw_only=True)
class SigningKey:
    kid: str
    private_key_sealed: bytes  # sealed with the service's sealing key, bound to ``kid``
    public_jwk: dict[str, Any]
    status: str  # active | retired | revoked
