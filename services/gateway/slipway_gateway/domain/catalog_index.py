"""The gateway's index of catalog resources: which organization, project, environment mode and
cluster each id belongs to, so that a request on ``/environments/{id}`` can be decided without
asking the catalog. Fed like the access projection: a snapshot, then ``catalog.*`` events, each
entity versioned (newer wins), deletions kept as tombstones.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from slipway_gateway.domain.policy import Resource

_KINDS = {
    "catalog.ClusterChanged": ("cluster", "cluster_id"),
    "catalog.ProjectChanged": ("project", "project_id"),
    "catalog.EnvironmentChanged": ("environment", "environment_id"),
    "catalog.ServiceChanged": ("service", "service_id"),
    "catalog.StageChanged": ("stage", "stage_id"),
    "catalog.VariableChanged": ("variable", "variable_id"),
}


@dataclass
class CatalogIndex:
    entries: dict[tuple[str, uuid.UUID], dict[str, Any]] = field(default_factory=dict)
    loaded: bool = False

    def apply(self, event_type: str, data: dict[str, Any]) -> None:
        kind = _KINDS.get(event_type)
        if kind is None:
            return
        key = (kind[0], uuid.UUID(str(data[kind[1]])))
        current = self.entries.get(key)
        if current is None or current["version"] < data["version"]:
            keep = (
                "organization_id",
                "project_id",
                "environment_id",
                "mode",
                "cluster_id",
                "scope",
                "parent_id",
                "deleted",
                "version",
            )
            self.entries[key] = {k: data[k] for k in keep if k in data}

    def load_snapshot(self, snapshot: dict[str, Any]) -> None:
        for change in snapshot["changes"]:
            self.apply(change["type"], change["data"])
        self.loaded = True

    def _live(self, kind: str, entity_id: uuid.UUID | None) -> dict[str, Any] | None:
        entry = self.entries.get((kind, entity_id)) if entity_id else None
        return entry if entry is not None and not entry.get("deleted") else None

    def resource(self, kind: str, entity_id: uuid.UUID | None) -> Resource | None:
        """The resource an id names, or None when unknown or deleted (the caller answers 404)."""
        entry = self._live(kind, entity_id)
        if entry is None or entity_id is None:
            return None
        org = uuid.UUID(str(entry["organization_id"]))
        if kind == "cluster":
            return Resource(organization_id=org, cluster_id=entity_id)
        if kind == "project":
            return Resource(organization_id=org, project_id=entity_id)
        if kind == "environment":
            return self._environment(entity_id)
        if kind in ("service", "stage"):
            return self._environment(uuid.UUID(str(entry["environment_id"])))
        if kind == "variable":
            return self.parent(str(entry["scope"]), uuid.UUID(str(entry["parent_id"])))
        return None

    def _environment(self, env_id: uuid.UUID) -> Resource | None:
        env = self._live("environment", env_id)
        if env is None:
            return None
        return Resource(
            organization_id=uuid.UUID(str(env["organization_id"])),
            project_id=uuid.UUID(str(env["project_id"])),
            environment_mode=str(env["mode"]),
            cluster_id=_cluster(env),
        )

    def parent(self, scope: str, parent_id: uuid.UUID | None) -> Resource | None:
        kinds = {"project": "project", "environment": "environment", "service": "service"}
        return self.resource(kinds[scope], parent_id) if scope in kinds else None


def _cluster(env: dict[str, Any]) -> uuid.UUID | None:
    value = env.get("cluster_id")
    return uuid.UUID(str(value)) if value else None
