"""The variables the catalog generates for a service: ids, names, and how to reach the other
services of its environment (private ports and databases)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from slipway_contracts.variables import Scope, VariableIn

DATABASE_PORTS = {"postgresql": 5432, "mysql": 3306, "mongodb": 27017, "redis": 6379}


def env_name(service_name: str) -> str:
    return re.sub(r"[^A-Z0-9]", "_", service_name.upper())


def _builtin(scope: Scope, key: str, value: str) -> VariableIn:
    # deterministic ids, so the resolved view names the same source on every read
    vid = uuid.uuid5(uuid.NAMESPACE_URL, f"slipway-builtin:{scope}:{key}:{value}")
    return VariableIn(id=vid, scope=scope, key=key, kind="built_in", value=value)


def built_ins(
    *,
    project_id: uuid.UUID,
    environment: Mapping[str, Any],
    services: Sequence[Mapping[str, Any]],
    service: Mapping[str, Any],
) -> list[VariableIn]:
    out = [
        _builtin("environment", "SLIPWAY_PROJECT_ID", str(project_id)),
        _builtin("environment", "SLIPWAY_ENVIRONMENT_ID", str(environment["id"])),
        _builtin("environment", "SLIPWAY_ENVIRONMENT_NAME", str(environment["name"])),
        _builtin("service", "SLIPWAY_SERVICE_ID", str(service["id"])),
        _builtin("service", "SLIPWAY_SERVICE_NAME", str(service["name"])),
    ]
    for other in services:
        out += _reach(other)
    return out


def _reach(service: Mapping[str, Any]) -> list[VariableIn]:
    name, spec = env_name(str(service["name"])), service["spec"]
    if service["kind"] == "database":
        port = DATABASE_PORTS.get(spec.get("engine", ""), 0)
        return [
            _builtin("environment", f"SLIPWAY_{name}_HOST", str(service["name"])),
            _builtin("environment", f"SLIPWAY_{name}_PORT", str(port)),
        ]
    private = [p for p in spec.get("ports", []) if not p.get("public")]
    if not private:
        return []
    port = next((p for p in private if p.get("default")), private[0])
    return [
        _builtin("environment", f"SLIPWAY_{name}_HOST", str(service["name"])),
        _builtin("environment", f"SLIPWAY_{name}_PORT", str(port["port"])),
    ]
