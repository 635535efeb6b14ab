"""Deployment stages: the default order (from the service kinds), and moving stages around."""

from __future__ import annotations

from slipway_catalog.domain.service_specs import DEFAULT_STAGES, default_stage

__all__ = ["DEFAULT_STAGES", "default_stage", "reorder"]


def reorder(current: list[str], wanted: list[str]) -> list[str]:
    """``wanted`` must be a permutation of ``current`` (stage ids)."""
    if sorted(current) != sorted(wanted) or len(set(wanted)) != len(wanted):
        raise ValueError("give every stage of the environment exactly once")
    return list(wanted)
