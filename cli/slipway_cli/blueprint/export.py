"""The ``slipway.yaml`` of an existing project: what ``apply`` would make again.

Services are written with every field the platform answers (their defaults too: nothing is
left to a default that may change); secrets by name, as ``{from_env: KEY}`` (their values are
never read back); plain variables with their values. Empty sections are left out.
"""

from __future__ import annotations

from typing import Any

from slipway_cli.blueprint.state import Clusters, Project, Scope


def export(project: Project, clusters: Clusters) -> dict[str, Any]:
    document: dict[str, Any] = {"version": 1, "project": project.name}
    document.update(_scoped(project))
    environments = {}
    for name, env in sorted(project.environments.items()):
        entry: dict[str, Any] = {"mode": env.mode, "cluster": clusters.name(env.cluster_id)}
        entry.update(_scoped(env))
        services = {
            service_name: {"kind": service.kind, **service.spec, **_scoped(service)}
            for service_name, service in sorted(env.services.items())
        }
        if services:
            entry["services"] = services
        environments[name] = entry
    if environments:
        document["environments"] = environments
    return document


def _scoped(scope: Scope) -> dict[str, Any]:
    variables = {k: v.value for k, v in sorted(scope.variables.items()) if not v.is_secret}
    secrets = {k: {"from_env": k} for k, v in sorted(scope.variables.items()) if v.is_secret}
    out: dict[str, Any] = {}
    if variables:
        out["variables"] = variables
    if secrets:
        out["secrets"] = secrets
    return out
