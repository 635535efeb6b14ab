"""What runs where, as the deployer records it: the databases it runs, the outputs of lifecycle
jobs, and the runs of jobs outside deployments."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class DatabaseInstance:
    """How to reach a database this deployer runs; its password sealed at rest."""

    service_id: uuid.UUID
    organization_id: uuid.UUID
    environment_id: uuid.UUID
    engine: str
    host: str
    port: int
    db_user: str
    db_name: str
    password_sealed: bytes
    version: int
    deleted: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class JobOutputs:
    """The variables a lifecycle job wrote (sealed at rest)."""

    environment_id: uuid.UUID
    service_id: uuid.UUID
    outputs_sealed: bytes
    updated_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class JobRun:
    """A run of a job outside deployments, forced by a user or fired by its schedule."""

    id: uuid.UUID
    seq: int
    service_id: uuid.UUID
    environment_id: uuid.UUID
    organization_id: uuid.UUID
    trigger: str
    scheduled_at: datetime | None
    requested_by: dict[str, Any] | None
    status: str
    exit_code: int | None
    message: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
