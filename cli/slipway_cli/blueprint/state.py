"""A project as the public API shows it, read for a plan or an export."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from slipway_cli.api import Slipway

# what the platform manages on a service: never part of its specification in a file
MANAGED = frozenset(
    {
        "id",
        "name",
        "environment_id",
        "project_id",
        "organization_id",
        "stage_id",
        "created_at",
        "updated_at",
        "resource_version",
    }
)


@dataclass
class Variable:
    id: str
    key: str
    is_secret: bool
    value: str | None
    version: int | None


@dataclass
class Scope:
    id: str
    version: int | None
    variables: dict[str, Variable] = field(default_factory=dict)  # value and secret kinds


@dataclass
class Service(Scope):
    name: str = ""
    kind: str = ""
    spec: dict[str, Any] = field(default_factory=dict)


@dataclass
class Environment(Scope):
    name: str = ""
    mode: str = ""
    cluster_id: str = ""
    services: dict[str, Service] = field(default_factory=dict)


@dataclass
class Project(Scope):
    name: str = ""
    environments: dict[str, Environment] = field(default_factory=dict)


@dataclass(frozen=True)
class Clusters:
    """The organization's clusters: a file names one by name or id (``local``: the local one)."""

    by_id: dict[str, dict[str, Any]]

    def resolve(self, name: str) -> str | None:
        if name in self.by_id:
            return name
        for cluster_id, cluster in self.by_id.items():
            if cluster.get("name") == name:
                return cluster_id
        if name == "local":
            local = [i for i, c in self.by_id.items() if c.get("kind") == "local"]
            return local[0] if local else None
        return None

    def name(self, cluster_id: str) -> str:
        cluster = self.by_id.get(cluster_id)
        if cluster is None:
            return cluster_id
        if cluster.get("kind") == "local":
            return "local"
        return str(cluster.get("name") or cluster_id)


def clusters(api: Slipway, org: str) -> Clusters:
    return Clusters({str(c["id"]): c for c in api.clusters(org)})


def read_project(api: Slipway, org: str, name: str) -> Project | None:
    """The organization's project of that name and everything the file describes, or None."""
    found = [p for p in api.projects(org) if p.get("name") == name]
    if not found:
        return None
    raw = found[0]
    project = Project(id=str(raw["id"]), version=raw.get("resource_version"), name=name)
    project.variables = _variables(api, "project", project.id)
    for env in api.environments(project.id):
        environment = Environment(
            id=str(env["id"]),
            version=env.get("resource_version"),
            name=str(env["name"]),
            mode=str(env["mode"]),
            cluster_id=str(env["cluster_id"]),
            variables=_variables(api, "environment", str(env["id"])),
        )
        for svc in api.services(environment.id):
            service_id = str(svc["id"])
            full: dict[str, Any] = dict(api.service(service_id))
            environment.services[str(svc["name"])] = Service(
                id=service_id,
                version=full.get("resource_version"),
                name=str(svc["name"]),
                kind=str(full.get("kind")),
                spec={k: v for k, v in full.items() if k not in MANAGED and k != "kind"},
                variables=_variables(api, "service", service_id),
            )
        project.environments[environment.name] = environment
    return project


def _variables(api: Slipway, scope: str, parent: str) -> dict[str, Variable]:
    """The scope's own variables a file can say: plain values and secrets (aliases, overrides,
    files and built-ins are the platform's or another tool's)."""
    found = {}
    for item in api.variables(scope, parent):
        if item.get("kind", "value") != "value":
            continue
        found[str(item["key"])] = Variable(
            id=str(item["id"]),
            key=str(item["key"]),
            is_secret=bool(item.get("is_secret")),
            value=item.get("value"),
            version=item.get("resource_version"),
        )
    return found
