"""Deployment stages: the default order, and moving stages around."""

from __future__ import annotations

DEFAULT_STAGES = ("databases", "jobs", "containers", "applications", "helm")

# where a new service goes, by kind
STAGE_OF_KIND = {
    "database": "databases",
    "cronjob": "jobs",
    "lifecycle": "jobs",
    "container": "containers",
    "application": "applications",
    "helm": "helm",
}


def reorder(current: list[str], wanted: list[str]) -> list[str]:
    """``wanted`` must be a permutation of ``current`` (stage ids)."""
    if sorted(current) != sorted(wanted) or len(set(wanted)) != len(wanted):
        raise ValueError("give every stage of the environment exactly once")
    return list(wanted)
