"""What a deployment does, decided from a snapshot of the configuration. Pure: no I/O.

A snapshot is the configuration one deployment acts on, frozen when it starts: the services in
scope (id, name, kind, spec, stage), the environment's stages, and the variables they see (secret
values still sealed). Deploying an older deployment's snapshot is a rollback: the images it
deployed are in it, so nothing is built again.

Stages run in their order (the catalog's positions) for DEPLOY and RESTART, in reverse order for
STOP and DELETE (the applications stop before the databases they use). Services without a known
stage run in a last stage named ``default``. Only stages with a service in scope appear.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from slipway_deployer.domain.state_machine import Action

# How each kind of service takes part in a deployment.
BUILT = frozenset({"application"})  # built from git first (jobs too when they have a git source)
LONG_RUNNING = frozenset({"application", "container"})
DATABASE = "database"
CRONJOB = "cronjob"
LIFECYCLE = "lifecycle"
HELM = "helm"


@dataclass(frozen=True)
class ServiceItem:
    id: uuid.UUID
    name: str
    kind: str
    spec: Mapping[str, Any]

    @property
    def needs_build(self) -> bool:
        return self.kind in BUILT or (
            self.kind in (CRONJOB, LIFECYCLE) and bool(self.spec.get("git"))
        )

    @property
    def triggers(self) -> frozenset[str]:
        """Lifecycle jobs: the environment events that run them."""
        return frozenset(self.spec.get("triggers") or ("start",))


@dataclass(frozen=True)
class StagePlan:
    position: int
    stage_id: uuid.UUID | None
    name: str
    services: tuple[ServiceItem, ...]


def snapshot_services(snapshot: Mapping[str, Any]) -> list[dict[str, Any]]:
    services: list[dict[str, Any]] = snapshot.get("services", [])
    return services


def plan(snapshot: Mapping[str, Any], action: Action) -> list[StagePlan]:
    stages = sorted(snapshot.get("stages", []), key=lambda s: (s["position"], str(s["id"])))
    known = {str(s["id"]) for s in stages}
    groups: dict[str | None, list[ServiceItem]] = {}
    for svc in snapshot_services(snapshot):
        stage = str(svc["stage_id"]) if svc.get("stage_id") else None
        groups.setdefault(stage if stage in known else None, []).append(_item(svc))
    ordered: list[tuple[uuid.UUID | None, str, list[ServiceItem]]] = [
        (uuid.UUID(str(s["id"])), str(s["name"]), groups[str(s["id"])])
        for s in stages
        if str(s["id"]) in groups
    ]
    if None in groups:
        ordered.append((None, "default", groups[None]))
    if action in (Action.STOP, Action.DELETE):
        ordered.reverse()
    return [
        StagePlan(position, stage_id, name, tuple(sorted(items, key=lambda i: i.name)))
        for position, (stage_id, name, items) in enumerate(ordered)
    ]


def _item(svc: Mapping[str, Any]) -> ServiceItem:
    return ServiceItem(
        id=uuid.UUID(str(svc["id"])), name=str(svc["name"]), kind=str(svc["kind"]), spec=svc["spec"]
    )


def in_scope(services: Iterable[Mapping[str, Any]], wanted: Sequence[uuid.UUID]) -> list[Any]:
    """Every service when ``wanted`` is empty, else those named (in the catalog's order)."""
    ids = {str(w) for w in wanted}
    return [s for s in services if not ids or str(s["id"]) in ids]


def config_digest(service: Mapping[str, Any], variables: Iterable[Mapping[str, Any]]) -> str:
    """Identifies one service's configuration: its spec and the variables it sees (by id and
    version, so a secret's value is never hashed). Freshness compares digests."""
    material = {
        "spec": service["spec"],
        "variables": sorted(f"{v['id']}:{v['version']}" for v in variables),
    }
    encoded = json.dumps(material, sort_keys=True, default=str).encode()
    return hashlib.sha256(encoded).hexdigest()[:32]


def visible_variables(
    variables: Iterable[Mapping[str, Any]], *, environment_id: Any, service_id: Any
) -> list[Mapping[str, Any]]:
    """The variables one service sees: its project's, its environment's and its own."""
    parents = {str(environment_id), str(service_id)}
    return [v for v in variables if v["scope"] == "project" or str(v["parent_id"]) in parents]


def image_reference(spec: Mapping[str, Any], version: str | None = None) -> str:
    """A container's image, ``registry/name:tag`` (``version`` replaces the tag)."""
    image = spec["image"]
    registry = image.get("registry") or "docker.io"
    return f"{registry}/{image['name']}:{version or image.get('tag') or 'latest'}"


def image_repository(organization_id: uuid.UUID, service_id: uuid.UUID) -> str:
    """Where the builder pushes a service's images (tagged by commit)."""
    return f"slipway/{organization_id}/{service_id}"


def output_variables(raw: str | None, *, max_keys: int = 100) -> dict[str, str]:
    """A lifecycle job's output file: a JSON object whose keys become variables. Values that are
    not strings are JSON-encoded; ``{"KEY": {"value": "..."}}`` (Qovery's shape) is accepted too.
    Invalid content raises ``ValueError`` with a reason a user can act on."""
    if raw is None or not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"the output file is not JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(data, dict):
        raise ValueError("the output file must hold a JSON object")
    if len(data) > max_keys:
        raise ValueError(f"the output file has more than {max_keys} keys")
    out: dict[str, str] = {}
    for key, value in data.items():
        if not isinstance(key, str) or not key.isidentifier() or not key.isascii():
            raise ValueError(f"output key {key!r} is not a valid variable name")
        if isinstance(value, dict) and "value" in value:
            value = value["value"]
        out[key] = value if isinstance(value, str) else json.dumps(value)
    return out
