"""A variable as the repositories answer it (``db.queries``).

A secret's value is only ever stored sealed (``value_sealed``, the variable's id as associated
data) and ``value`` is then ``None``; a plain variable has no sealed value. Pure values: no I/O."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Variable:
    id: uuid.UUID
    organization_id: uuid.UUID
    project_id: uuid.UUID
    environment_id: uuid.UUID | None
    service_id: uuid.UUID | None
    scope: str
    parent_id: uuid.UUID
    key: str
    kind: str
    value: str | None
    value_sealed: bytes | None
    is_secret: bool
    mount_path: str | None
    description: str
    version: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None

    def sealed(self) -> bytes:
        """A secret's sealed value (a plain variable has none)."""
        if self.value_sealed is None:
            raise ValueError(f"variable {self.id} is not a secret")
        return self.value_sealed
