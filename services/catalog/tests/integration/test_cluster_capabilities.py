"""What the local cluster offers comes from the catalog's setting (or this host), and services
saved before capabilities were checked stay editable (real PostgreSQL, the catalog's API)."""

from __future__ import annotations

import uuid

import pytest

from slipway_catalog.config import CatalogSettings
from slipway_catalog.usecases.deps import Deps
from slipway_libs.crypto import new_key_setting

pytestmark = pytest.mark.integration

HELM = {
    "name": "chart",
    "kind": "helm",
    "chart": {
        "source": "repository",
        "repository_url": "https://charts.example.com",
        "name": "redis",
        "version": "1.2.3",
    },
    "release_name": "chart",
}


@pytest.fixture
def deps() -> Deps:
    # a deployer elsewhere, whose host runs PostgreSQL 16
    settings = CatalogSettings(
        database_url="unused",
        sealing_keys=new_key_setting("t1"),
        local_postgresql_version="16",
    )
    return Deps.from_settings(settings)


async def local_env(api) -> tuple[str, str]:
    org = str(uuid.uuid4())
    (local,) = (await api.get(f"/organizations/{org}/clusters")).json()["items"]
    project = (await api.post(f"/organizations/{org}/projects", json={"name": "P"})).json()
    env = await api.post(
        f"/projects/{project['id']}/environments",
        json={"name": "staging", "mode": "staging", "cluster_id": local["id"]},
    )
    assert env.status_code == 201, env.text
    return local["id"], env.json()["id"]


async def test_the_local_offer_is_the_settings(api) -> None:
    cluster, env = await local_env(api)
    read = (await api.get(f"/clusters/{cluster}")).json()
    assert read["capabilities"]["databases"] == [
        {"engine": "postgresql", "versions": ["16"], "default_version": "16"}
    ]
    db = await api.post(
        f"/environments/{env}/services",
        json={"name": "db", "kind": "database", "engine": "postgresql"},
    )
    assert (db.status_code, db.json()["version"]) == (201, "16")
    other = await api.post(
        f"/environments/{env}/services",
        json={"name": "db2", "kind": "database", "engine": "postgresql", "version": "15"},
    )
    assert other.json()["error"]["code"] == "DATABASE_VERSION_NOT_AVAILABLE"
    assert other.json()["error"]["details"]["available"] == ["16"]


async def test_services_saved_before_the_checks_stay_editable(api, catalog_db) -> None:
    """A Helm service and a PostgreSQL 17 database accepted on the local cluster before it
    said what it runs: an unrelated edit is not refused; the deployer reports them."""
    _, env_id = await local_env(api)
    env = await catalog_db[1].fetchrow(
        "SELECT * FROM environments WHERE id = $1", uuid.UUID(env_id)
    )
    legacy = {
        "helm": HELM,
        "db": {
            "name": "db",
            "kind": "database",
            "engine": "postgresql",
            "version": "17",
            "storage_gib": 10,
        },
    }
    ids = {}
    for name, spec in legacy.items():
        ids[name] = uuid.uuid4()
        await catalog_db[1].execute(
            "INSERT INTO services (id, organization_id, project_id, environment_id, name, kind,"
            " spec) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            ids[name],
            env["organization_id"],
            env["project_id"],
            env["id"],
            spec["name"],
            spec["kind"],
            spec,
        )
    values = await api.patch(f"/services/{ids['helm']}", json={"values_yaml": "replicas: 2\n"})
    assert values.status_code == 200, values.text
    grown = await api.patch(f"/services/{ids['db']}", json={"storage_gib": 20})
    assert (grown.status_code, grown.json()["version"]) == (200, "17")
