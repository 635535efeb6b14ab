"""Built-in variables: the ``SLIPWAY_*`` variables the platform generates for a service from its
environment's state (ids, names, how to reach the other services and deployed databases). Pure."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote
from uuid import UUID

from slipway_contracts.variables import DatabaseConnectionInfo, Scope, VariableIn

DATABASE_PORTS = {"postgresql": 5432, "mysql": 3306, "mongodb": 27017, "redis": 6379}
_URL_SCHEMES = {
    "postgresql": "postgresql",
    "mysql": "mysql",
    "mongodb": "mongodb",
    "redis": "redis",
}


def env_name(service_name: str) -> str:
    """The part of a built-in's key that names a service: ``my-db`` gives ``MY_DB``."""
    return re.sub(r"[^A-Z0-9]", "_", service_name.upper())


def built_ins(
    *,
    project_id: UUID,
    environment: Mapping[str, Any],
    services: Sequence[Mapping[str, Any]],
    service: Mapping[str, Any],
    connections: Mapping[UUID, DatabaseConnectionInfo] | None = None,
) -> list[VariableIn]:
    """The ``SLIPWAY_*`` variables ``service`` receives, in a stable order.

    ``environment`` and the ``services`` of the environment (``service`` among them) are rows
    with ``id``, ``name`` and, for services, ``kind`` and ``spec``. Each other service that can
    be reached gives ``SLIPWAY_<NAME>_HOST`` and ``_PORT``: a private port of an application or
    container, or a database. A database with a known connection (``connections``, by service
    id: it is deployed) gives its real host and port, plus ``_USER``, ``_DATABASE``, and the
    secrets ``_PASSWORD`` and ``_URL``; without one, its service name and the engine's port.

    Ids are deterministic, so the resolved view names the same source on every read; a secret's
    id is derived from its key and its database, never from its value.
    """
    known = connections or {}
    out = [
        _builtin("environment", "SLIPWAY_PROJECT_ID", str(project_id)),
        _builtin("environment", "SLIPWAY_ENVIRONMENT_ID", str(environment["id"])),
        _builtin("environment", "SLIPWAY_ENVIRONMENT_NAME", str(environment["name"])),
        _builtin("service", "SLIPWAY_SERVICE_ID", str(service["id"])),
        _builtin("service", "SLIPWAY_SERVICE_NAME", str(service["name"])),
    ]
    for other in services:
        out += _reach(other, known)
    return out


def database_url(engine: str, connection: DatabaseConnectionInfo) -> str | None:
    """``<engine>://user:password@host:port/database`` (user, password and database
    percent-encoded); ``None`` for an engine without a known URL form."""
    scheme = _URL_SCHEMES.get(engine)
    if scheme is None:
        return None
    host = connection.host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address
    user, password = quote(connection.user, safe=""), quote(connection.password, safe="")
    return f"{scheme}://{user}:{password}@{host}:{connection.port}/{quote(connection.database)}"


def _builtin(scope: Scope, key: str, value: str) -> VariableIn:
    vid = uuid.uuid5(uuid.NAMESPACE_URL, f"slipway-builtin:{scope}:{key}:{value}")
    return VariableIn(id=vid, scope=scope, key=key, kind="built_in", value=value)


def _secret_builtin(scope: Scope, key: str, value: str, *, owner: UUID) -> VariableIn:
    vid = uuid.uuid5(uuid.NAMESPACE_URL, f"slipway-builtin-secret:{scope}:{key}:{owner}")
    return VariableIn(id=vid, scope=scope, key=key, kind="built_in", value=value, is_secret=True)


def _reach(
    service: Mapping[str, Any], connections: Mapping[UUID, DatabaseConnectionInfo]
) -> list[VariableIn]:
    name, spec = env_name(str(service["name"])), service["spec"]
    if service["kind"] == "database":
        engine = str(spec.get("engine", ""))
        service_id = _as_uuid(service["id"])
        connection = connections.get(service_id)
        if connection is not None:
            return _database(name, engine, service_id, connection)
        port = DATABASE_PORTS.get(engine, 0)
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


def _database(
    name: str, engine: str, service_id: UUID, connection: DatabaseConnectionInfo
) -> list[VariableIn]:
    prefix = f"SLIPWAY_{name}_"
    out = [
        _builtin("environment", f"{prefix}HOST", connection.host),
        _builtin("environment", f"{prefix}PORT", str(connection.port)),
        _builtin("environment", f"{prefix}USER", connection.user),
        _builtin("environment", f"{prefix}DATABASE", connection.database),
        _secret_builtin("environment", f"{prefix}PASSWORD", connection.password, owner=service_id),
    ]
    url = database_url(engine, connection)
    if url is not None:
        out.append(_secret_builtin("environment", f"{prefix}URL", url, owner=service_id))
    return out


def _as_uuid(value: Any) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))
