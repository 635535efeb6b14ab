"""A project as the repositories answer it (``db.queries``): named per organization.

``version`` is the ``catalog_version`` of the row's last change (the events' "newer wins"
order, and the API's ETag). Pure values: no I/O."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Project:
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    description: str
    version: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
