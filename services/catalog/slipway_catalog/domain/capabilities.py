"""What a cluster can run: service kinds, database engines and their versions.

Invariants:
- The ``local`` cluster advertises what the deployer's local runtime really runs: applications,
  containers, cron jobs and lifecycle jobs, and PostgreSQL databases at the host's PostgreSQL
  major (the runtime starts the newest ``/usr/lib/postgresql/<major>`` it finds and refuses
  any other version). No Helm: the local runtime has no Kubernetes to install a chart into.
- A ``self_managed`` Kubernetes cluster runs every kind, and databases of every engine at every
  version the catalog knows (container mode: a StatefulSet of the engine's image).
- A database's version, when the request names none, is the newest the environment's cluster
  offers for the engine, never a version it cannot run.
- A service the cluster cannot run is refused at creation (422) with a stable code
  (``KIND_NOT_AVAILABLE``, ``DATABASE_ENGINE_NOT_AVAILABLE``, ``DATABASE_VERSION_NOT_AVAILABLE``)
  and a message naming what the cluster offers; ``details.available`` lists it for clients.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from slipway_catalog.domain.clusters import Cluster
from slipway_catalog.domain.specs.database import DATABASE_VERSIONS
from slipway_libs.errors import InvalidInput

ALL_KINDS: Final = ("application", "container", "database", "cronjob", "lifecycle", "helm")
LOCAL_KINDS: Final = ("application", "container", "database", "cronjob", "lifecycle")
ENGINE_NAMES: Final = {
    "postgresql": "PostgreSQL",
    "mysql": "MySQL",
    "mongodb": "MongoDB",
    "redis": "Redis",
}


@dataclass(frozen=True, slots=True)
class Capabilities:
    kinds: tuple[str, ...]
    # engine -> versions, oldest first (the last is the default)
    databases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "kinds": list(self.kinds),
            "databases": [
                {"engine": engine, "versions": list(versions), "default_version": versions[-1]}
                for engine, versions in self.databases.items()
            ],
        }

    def default_version(self, engine: str) -> str | None:
        versions = self.databases.get(engine)
        return versions[-1] if versions else None

    def summary(self) -> str:
        """What the cluster runs, for a refusal's message."""
        kinds = ", ".join(self.kinds)
        if not self.databases:
            return f"it runs {kinds} services, and no database engine"
        return f"it runs {kinds} services, and databases: {self.databases_summary()}"

    def databases_summary(self) -> str:
        if not self.databases:
            return "none"
        return "; ".join(
            f"{ENGINE_NAMES.get(engine, engine)} {', '.join(versions)}"
            for engine, versions in self.databases.items()
        )


def local(postgresql_versions: tuple[str, ...]) -> Capabilities:
    """The local runtime's offer, given the PostgreSQL majors this host runs (none: no
    databases). Only the versions the catalog knows a spec for are offered."""
    known = DATABASE_VERSIONS["postgresql"]
    offered = tuple(v for v in known if v in postgresql_versions)
    return Capabilities(LOCAL_KINDS, {"postgresql": offered} if offered else {})


KUBERNETES: Final = Capabilities(ALL_KINDS, dict(DATABASE_VERSIONS))


def of(cluster: Cluster, *, local_offer: Capabilities) -> Capabilities:
    return local_offer if cluster.kind == "local" else KUBERNETES


class NotAvailable(InvalidInput):
    """422: the environment's cluster cannot run this; ``details`` names what it offers."""

    def __init__(
        self, code: str, message: str, *, field: str, cluster: Cluster, available: list[Any]
    ) -> None:
        super().__init__(code, message, field=field)
        self.details = {
            "field": field,
            "cluster_id": str(cluster.id),
            "cluster_kind": cluster.kind,
            "available": available,
        }


def with_default_version(data: Mapping[str, Any], offer: Capabilities) -> Mapping[str, Any]:
    """A database request without a version gets the newest one the cluster offers for its
    engine; anything else is left to the spec's own validation."""
    if data.get("kind") != "database" or data.get("version") is not None:
        return data
    engine = data.get("engine")
    default = offer.default_version(engine) if isinstance(engine, str) else None
    return data if default is None else {**data, "version": default}


def check(
    cluster: Cluster,
    offer: Capabilities,
    *,
    kind: str,
    engine: str | None = None,
    version: str | None = None,
    service: str | None = None,
) -> None:
    """Raise ``NotAvailable`` unless ``cluster`` can run this kind (and database)."""
    subject = f"the service {service!r}: " if service else ""
    where = f"The cluster {cluster.name!r} ({cluster.kind})"
    if kind not in offer.kinds:
        hint = " Helm charts need a Kubernetes cluster." if kind == "helm" else ""
        raise NotAvailable(
            "KIND_NOT_AVAILABLE",
            f"{subject}{where} cannot run {kind} services; {offer.summary()}.{hint}",
            field="kind",
            cluster=cluster,
            available=list(offer.kinds),
        )
    if kind != "database" or engine is None:
        return
    versions = offer.databases.get(engine)
    if not versions:
        raise NotAvailable(
            "DATABASE_ENGINE_NOT_AVAILABLE",
            f"{subject}{where} cannot run {ENGINE_NAMES.get(engine, engine)} databases; "
            f"available: {offer.databases_summary()}.",
            field="engine",
            cluster=cluster,
            available=sorted(offer.databases),
        )
    if version not in versions:
        raise NotAvailable(
            "DATABASE_VERSION_NOT_AVAILABLE",
            f"{subject}{where} cannot run {ENGINE_NAMES.get(engine, engine)} {version}; "
            f"available: {', '.join(versions)}.",
            field="version",
            cluster=cluster,
            available=list(versions),
        )


def check_service(
    cluster: Cluster, offer: Capabilities, spec: Mapping[str, Any], *, named: bool = False
) -> None:
    """``check`` for a service's spec as JSON (validated, or as stored); ``named`` puts the
    service's name in the message (when several are checked at once, as by a clone)."""
    engine, version = spec.get("engine"), spec.get("version")
    check(
        cluster,
        offer,
        kind=str(spec.get("kind")),
        engine=str(engine) if engine is not None else None,
        version=str(version) if version is not None else None,
        service=str(spec.get("name")) if named else None,
    )
