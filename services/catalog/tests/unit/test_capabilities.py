"""What a cluster can run, and the refusals of what it cannot: the local cluster runs the local
runtime's kinds and the host's PostgreSQL major, a Kubernetes cluster everything."""

from __future__ import annotations

import datetime
import uuid
from pathlib import Path
from typing import Any

import pytest

from slipway_catalog.adapters.host import local_capabilities, postgresql_majors
from slipway_catalog.domain import capabilities
from slipway_catalog.domain.capabilities import KUBERNETES, NotAvailable
from slipway_catalog.domain.clusters import Cluster, ClusterIn, refuse_kind
from slipway_catalog.domain.service_specs import parse_spec
from slipway_catalog.domain.specs.database import DATABASE_VERSIONS
from slipway_libs.errors import InvalidInput

NOW = datetime.datetime.now(datetime.UTC)
HELM = {
    "name": "chart",
    "kind": "helm",
    "chart": {
        "source": "repository",
        "repository_url": "https://charts.example.com",
        "name": "redis",
        "version": "1.2.3",
    },
}


def cluster(kind: str) -> Cluster:
    return Cluster(
        id=uuid.uuid4(),
        organization_id=uuid.uuid4(),
        name=kind.replace("_", "-"),
        kind=kind,
        api_url=None,
        credentials_sealed=None,
        version=1,
        created_at=NOW,
        updated_at=NOW,
        deleted_at=None,
    )


LOCAL = capabilities.local(("15",))


def test_the_local_cluster_runs_no_helm_and_postgresql_at_the_host_version_only() -> None:
    assert LOCAL.as_json() == {
        "kinds": ["application", "container", "database", "cronjob", "lifecycle"],
        "databases": [{"engine": "postgresql", "versions": ["15"], "default_version": "15"}],
    }
    assert capabilities.of(cluster("local"), local_offer=LOCAL) is LOCAL


def test_a_kubernetes_cluster_runs_every_kind_and_every_engine_version() -> None:
    offer = capabilities.of(cluster("self_managed"), local_offer=LOCAL)
    assert offer is KUBERNETES
    assert set(offer.kinds) == {
        "application",
        "container",
        "database",
        "cronjob",
        "lifecycle",
        "helm",
    }
    assert dict(offer.databases) == DATABASE_VERSIONS


def test_a_database_without_a_version_gets_the_clusters_newest() -> None:
    request = {"name": "db", "kind": "database", "engine": "postgresql"}
    assert capabilities.with_default_version(request, LOCAL)["version"] == "15"
    assert capabilities.with_default_version(request, KUBERNETES)["version"] == "17"
    named = {**request, "version": "16"}
    assert capabilities.with_default_version(named, LOCAL) == named  # checked, not replaced
    # an engine the cluster lacks keeps no version: the spec's default, then the refusal
    redis = {"name": "cache", "kind": "database", "engine": "redis"}
    assert capabilities.with_default_version(redis, LOCAL) == redis


def refusal(on: Cluster, offer: capabilities.Capabilities, data: dict[str, Any]) -> NotAvailable:
    spec = parse_spec(capabilities.with_default_version(data, offer)).model_dump(mode="json")
    with pytest.raises(NotAvailable) as refused:
        capabilities.check_service(on, offer, spec)
    return refused.value


def test_helm_on_the_local_cluster_is_refused_naming_what_it_runs() -> None:
    local = cluster("local")
    refused = refusal(local, LOCAL, HELM)
    assert (refused.status_code, refused.code) == (422, "KIND_NOT_AVAILABLE")
    assert "cannot run helm services" in refused.message
    assert "application, container, database, cronjob, lifecycle" in refused.message
    assert "PostgreSQL 15" in refused.message
    assert refused.details == {
        "field": "kind",
        "cluster_id": str(local.id),
        "cluster_kind": "local",
        "available": ["application", "container", "database", "cronjob", "lifecycle"],
    }
    capabilities.check_service(cluster("self_managed"), KUBERNETES, parse_spec(HELM).model_dump())


@pytest.mark.parametrize(
    ("data", "code", "available", "says"),
    [
        (
            {"engine": "postgresql", "version": "17"},
            "DATABASE_VERSION_NOT_AVAILABLE",
            ["15"],
            "cannot run PostgreSQL 17; available: 15.",
        ),
        (
            {"engine": "redis"},
            "DATABASE_ENGINE_NOT_AVAILABLE",
            ["postgresql"],
            "cannot run Redis databases; available: PostgreSQL 15.",
        ),
        (
            {"engine": "mysql", "version": "8.0"},
            "DATABASE_ENGINE_NOT_AVAILABLE",
            ["postgresql"],
            "cannot run MySQL databases",
        ),
    ],
)
def test_a_database_the_local_cluster_cannot_run_is_refused(
    data: dict[str, Any], code: str, available: list[str], says: str
) -> None:
    refused = refusal(cluster("local"), LOCAL, {"name": "db", "kind": "database", **data})
    assert refused.code == code
    assert refused.details["available"] == available
    assert says in refused.message


def test_every_engine_version_runs_on_kubernetes() -> None:
    on = cluster("self_managed")
    for engine, versions in DATABASE_VERSIONS.items():
        for version in versions:
            spec = {"name": "db", "kind": "database", "engine": engine, "version": version}
            capabilities.check_service(on, KUBERNETES, parse_spec(spec).model_dump())


def test_a_host_without_postgresql_offers_no_database() -> None:
    offer = capabilities.local(())
    assert offer.as_json()["databases"] == []
    refused = refusal(
        cluster("local"), offer, {"name": "db", "kind": "database", "engine": "postgresql"}
    )
    assert refused.code == "DATABASE_ENGINE_NOT_AVAILABLE"
    assert "available: none" in refused.message


def test_a_clone_names_the_service_it_cannot_place() -> None:
    with pytest.raises(NotAvailable, match="the service 'chart': "):
        capabilities.check_service(
            cluster("local"), LOCAL, parse_spec(HELM).model_dump(), named=True
        )


def fake_postgresql(root: Path, major: str, binaries: tuple[str, ...]) -> None:
    bin_dir = root / major / "bin"
    bin_dir.mkdir(parents=True)
    for name in binaries:
        (bin_dir / name).write_text("")


def test_the_host_major_is_the_newest_the_deployer_would_start(tmp_path: Path) -> None:
    assert postgresql_majors(tmp_path) == ()
    server = ("initdb", "pg_ctl", "postgres")
    fake_postgresql(tmp_path, "13", server)
    fake_postgresql(tmp_path, "15", server)
    assert postgresql_majors(tmp_path) == ("15",)
    # the deployer takes the newest bin dir; without the server binaries nothing starts there
    fake_postgresql(tmp_path, "16", ("psql",))
    assert postgresql_majors(tmp_path) == ()
    assert local_capabilities(None, root=tmp_path).databases == {}


def test_the_setting_names_the_local_version(tmp_path: Path) -> None:
    assert local_capabilities("16", root=tmp_path).databases == {"postgresql": ("16",)}
    assert local_capabilities("none", root=tmp_path).databases == {}
    # a major the catalog has no spec for cannot be asked for, so it is not offered
    assert local_capabilities("12", root=tmp_path).databases == {}


@pytest.mark.parametrize(("kind", "says"), [("managed", "not supported"), ("local", "built in")])
def test_only_self_managed_clusters_are_registered(kind: str, says: str) -> None:
    body = ClusterIn.model_validate({"name": "eks", "kind": kind})  # no credentials asked first
    with pytest.raises(InvalidInput) as refused:
        refuse_kind(body.kind)
    assert (refused.value.code, refused.value.field) == ("CLUSTER_KIND_NOT_SUPPORTED", "kind")
    assert says in refused.value.message
    refuse_kind("self_managed")
