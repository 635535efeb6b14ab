"""From a deployment's snapshot to what the runtime runs: the workload of one service, with its
variables resolved exactly as the catalog resolves them (the shared rules of
``slipway_resolver``), secrets unsealed only here, in memory, for the runtime.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from slipway_contracts.variables import DatabaseConnectionInfo, VariableIn
from slipway_deployer.adapters.runtime.base import CronSpec, HealthSpec, PortSpec, Workload
from slipway_deployer.domain.plan import ServiceItem, visible_variables
from slipway_deployer.domain.running import DatabaseInstance, JobOutputs
from slipway_libs.crypto import Sealer
from slipway_resolver import built_ins, resolve


@dataclass(frozen=True)
class Context:
    """What every service of one deployment shares."""

    snapshot: Mapping[str, Any]
    connections: Mapping[uuid.UUID, DatabaseConnectionInfo]
    outputs: Mapping[str, str]  # lifecycle jobs' output variables (earlier stages)
    transport: Sealer


@dataclass(frozen=True)
class Delivery:
    """What one service receives: environment values and files (secrets in clear: never log)."""

    env: dict[str, str] = field(repr=False)
    files: dict[str, str] = field(repr=False)  # path inside the container -> content


def deliver(context: Context, item: ServiceItem) -> Delivery:
    """Resolve the service's variables. Output variables of lifecycle jobs come last and never
    replace a variable the user set."""
    snapshot = context.snapshot
    env = snapshot["environment"]
    rows = visible_variables(
        snapshot.get("variables", []), environment_id=env["id"], service_id=item.id
    )
    visible = [_variable_in(row, context.transport) for row in rows]
    generated = built_ins(
        project_id=uuid.UUID(str(env["project_id"])),
        environment=env,
        services=snapshot.get("all_services", snapshot.get("services", [])),
        service={"id": item.id, "name": item.name, "kind": item.kind, "spec": item.spec},
        connections=context.connections,
    )
    resolved = resolve([*visible, *generated])
    values = {key: r.value for key, r in resolved.items() if not r.is_file}
    for key, value in context.outputs.items():
        values.setdefault(key, value)
    files = {str(r.mount_path): r.value for r in resolved.values() if r.is_file}
    return Delivery(values, files)


def _variable_in(row: Mapping[str, Any], transport: Sealer) -> VariableIn:
    value = row.get("value")
    if row.get("is_secret") and row.get("value_sealed"):
        sealed = base64.b64decode(str(row["value_sealed"]))
        value = transport.open(sealed, aad=uuid.UUID(str(row["id"])).bytes).decode()
    return VariableIn(
        id=uuid.UUID(str(row["id"])),
        scope=row["scope"],
        key=row["key"],
        kind=row["kind"],
        value=value or "",
        is_secret=bool(row.get("is_secret")),
        mount_path=row.get("mount_path"),
    )


def workload(
    item: ServiceItem,
    *,
    image: str,
    environment_id: uuid.UUID,
    delivery: Delivery,
    organization_id: uuid.UUID | None = None,
) -> Workload:
    spec = item.spec
    return Workload(
        service_id=str(item.id),
        environment_id=str(environment_id),
        name=item.name,
        image=image,
        command=spec.get("command") or None,
        args=spec.get("args") or None,
        env=delivery.env,
        files=delivery.files,
        ports=[_port(p) for p in spec.get("ports", [])],
        health=_health(spec.get("healthchecks") or {}),
        kind="job" if item.kind in ("cronjob", "lifecycle") else "service",
        organization_id=str(organization_id) if organization_id is not None else None,
        cpu_millicores=spec.get("cpu_millicores"),
        memory_mib=spec.get("memory_mib"),
        instances=int(spec.get("min_instances", 1)),
        cron=_cron(spec) if item.kind == "cronjob" else None,
    )


def _cron(spec: Mapping[str, Any]) -> CronSpec | None:
    if not spec.get("schedule"):
        return None
    return CronSpec(
        schedule=str(spec["schedule"]),
        timezone=str(spec.get("timezone") or "UTC"),
        concurrency_policy=spec.get("concurrency_policy") or "forbid",
    )


def _port(port: Mapping[str, Any]) -> PortSpec:
    return PortSpec(
        port=int(port["port"]),
        protocol=str(port.get("protocol", "http")),
        public=bool(port.get("public", False)),
        default=bool(port.get("default", False)),
    )


def _health(checks: Mapping[str, Any]) -> HealthSpec | None:
    """The readiness probe (else liveness) of http/tcp type; exec probes are not run locally."""
    probe = checks.get("readiness") or checks.get("liveness")
    if not probe or probe.get("type") not in ("http", "tcp"):
        return None
    return HealthSpec(
        type=probe["type"],
        path=probe.get("path") or "/",
        port=probe.get("port"),
        initial_delay_s=float(probe.get("initial_delay_s", 0)),
        period_s=float(probe.get("period_s", 10)),
        timeout_s=float(probe.get("timeout_s", 1)),
        failure_threshold=int(probe.get("failure_threshold", 3)),
    )


def connection_info(row: DatabaseInstance, at_rest: Sealer) -> DatabaseConnectionInfo:
    password = at_rest.open(row.password_sealed, aad=row.service_id.bytes).decode()
    return DatabaseConnectionInfo(
        host=row.host, port=row.port, user=row.db_user, database=row.db_name, password=password
    )


def seal_outputs(outputs: Mapping[str, str], at_rest: Sealer, service_id: uuid.UUID) -> bytes:
    return at_rest.seal(json.dumps(dict(outputs)).encode(), aad=service_id.bytes)


def open_outputs(rows: Sequence[JobOutputs], at_rest: Sealer) -> dict[str, str]:
    """Every job's outputs of the environment, the most recent last (it wins)."""
    merged: dict[str, str] = {}
    for row in rows:
        clear = at_rest.open(row.outputs_sealed, aad=row.service_id.bytes)
        merged.update(json.loads(clear))
    return merged
