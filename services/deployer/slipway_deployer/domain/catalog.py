"""The deployer's copy of the catalog (kept from the catalog's full-state events): what a
deployment plans from. Deleted entities stay as tombstones (``deleted``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class CatalogCluster:
    """Where an environment runs: ``local`` or ``self_managed``. ``credentials_sealed`` is the
    access (JSON) sealed with the transport key, bound to the cluster's id: never in clear here,
    never logged (``repr=False``)."""

    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    kind: str
    api_url: str | None
    credentials_sealed: str | None = field(repr=False)
    capabilities: dict[str, Any] | None
    settings: dict[str, str] | None
    deleted: bool
    version: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CatalogEnvironment:
    id: uuid.UUID
    organization_id: uuid.UUID
    project_id: uuid.UUID
    name: str
    mode: str
    cluster_id: uuid.UUID
    deleted: bool
    version: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CatalogService:
    id: uuid.UUID
    organization_id: uuid.UUID
    project_id: uuid.UUID
    environment_id: uuid.UUID
    name: str
    kind: str
    spec: dict[str, Any]
    stage_id: uuid.UUID | None
    deleted: bool
    version: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CatalogStage:
    id: uuid.UUID
    organization_id: uuid.UUID
    environment_id: uuid.UUID
    name: str
    position: int
    deleted: bool
    version: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CatalogVariable:
    """A variable; a secret's value is sealed (``value_sealed``), never in clear here."""

    id: uuid.UUID
    organization_id: uuid.UUID
    project_id: uuid.UUID
    environment_id: uuid.UUID | None
    scope: str
    parent_id: uuid.UUID
    key: str
    kind: str
    value: str | None
    value_sealed: str | None
    is_secret: bool
    mount_path: str | None
    deleted: bool
    version: int
