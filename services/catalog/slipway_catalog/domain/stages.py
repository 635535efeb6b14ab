"""Deployment stages: the default order (from the service kinds), and moving stages around."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from slipway_catalog.domain.service_specs import DEFAULT_STAGES, default_stage

__all__ = ["DEFAULT_STAGES", "Stage", "default_stage", "reorder"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Stage:
    """A stage as the repositories answer it: ``position`` orders an environment's stages."""

    id: uuid.UUID
    organization_id: uuid.UUID
    environment_id: uuid.UUID
    name: str
    position: int
    version: int
    deleted_at: datetime | None


def reorder(current: list[str], wanted: list[str]) -> list[str]:
    """``wanted`` must be a permutation of ``current`` (stage ids)."""
    if sorted(current) != sorted(wanted) or len(set(wanted)) != len(wanted):
        raise ValueError("give every stage of the environment exactly once")
    return list(wanted)
