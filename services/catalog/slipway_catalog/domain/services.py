"""A service as the repositories answer it (``db.queries``): its ``spec`` is the validated
specification of its kind (``domain.service_specs``), as JSON. Pure values: no I/O."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class Service:
    id: uuid.UUID
    organization_id: uuid.UUID
    project_id: uuid.UUID
    environment_id: uuid.UUID
    name: str
    kind: str
    spec: dict[str, Any]
    stage_id: uuid.UUID | None
    version: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None

    def reachable(self) -> dict[str, Any]:
        """What the built-in variables read of a service (``slipway_resolver.built_ins``)."""
        return {"id": self.id, "name": self.name, "kind": self.kind, "spec": self.spec}
