"""The deployment aggregate as the deployer keeps it: a deployment (a request until claimed),
its stage and service runs, and the status of each environment and service it moves. Values
read from the database, immutable; a change is written and read back."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


class Acting(Protocol):
    """What an event about an action names: the deployment (``None``: none yet), where it
    acts, and which action it is."""

    @property
    def id(self) -> uuid.UUID | None: ...
    @property
    def environment_id(self) -> uuid.UUID: ...
    @property
    def organization_id(self) -> uuid.UUID: ...
    @property
    def action(self) -> str: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Deployment:
    """A deployment request and, once claimed, its execution. ``service_ids`` empty: the whole
    environment. ``snapshot``: the configuration it acts on, frozen when it is planned."""

    id: uuid.UUID
    seq: int
    organization_id: uuid.UUID
    project_id: uuid.UUID
    environment_id: uuid.UUID
    action: str
    service_ids: tuple[uuid.UUID, ...]
    version: str | None
    trigger: str
    rollback_of: uuid.UUID | None
    requested_by: dict[str, Any] | None
    status: str
    reason: str | None
    message: str | None
    snapshot: dict[str, Any] | None
    trace_carrier: dict[str, Any] | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    planned_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class StageRun:
    deployment_id: uuid.UUID
    position: int
    stage_id: uuid.UUID | None
    name: str
    status: str
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceRun:
    """One service's part in a deployment: its build, then its deployment step."""

    deployment_id: uuid.UUID
    service_id: uuid.UUID
    position: int  # its stage
    name: str
    kind: str
    status: str
    build_id: uuid.UUID | None
    build_status: str | None
    image: str | None
    commit: str | None
    reason: str | None
    message: str | None
    steps: dict[str, float]  # seconds per step
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class EnvironmentStatus:
    environment_id: uuid.UUID
    organization_id: uuid.UUID
    state: str
    last_action: str | None
    last_deployment_id: uuid.UUID | None
    updated_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceStatus:
    service_id: uuid.UUID
    environment_id: uuid.UUID
    organization_id: uuid.UUID
    state: str
    last_action: str | None
    running_status: str | None
    urls: tuple[str, ...]
    message: str | None
    deployed_config: str | None  # digest of the configuration last deployed (freshness)
    deployed_image: str | None
    last_deployment_id: uuid.UUID | None
    updated_at: datetime
