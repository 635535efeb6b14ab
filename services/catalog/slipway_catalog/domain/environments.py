"""An environment as the repositories answer it (``db.queries``): a mode and a cluster, fixed
at creation; ``cloned_from`` names the environment it was cloned from. Pure values: no I/O."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Environment:
    id: uuid.UUID
    organization_id: uuid.UUID
    project_id: uuid.UUID
    name: str
    mode: str
    cluster_id: uuid.UUID
    cloned_from: uuid.UUID | None
    version: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
