"""The platform's own cluster (``SLIPWAY_CATALOG_BOOTSTRAP_KUBECONFIG``, set by ``make up`` with
the devstack's Kubernetes) goes to the first organization ever created, once, and to no other —
even when two organizations are created at the same time (real PostgreSQL, identity's event as
the catalog's consumer applies it)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from slipway_catalog.config import CatalogSettings
from slipway_catalog.db import queries as q
from slipway_catalog.domain.kubeconfig import parse_kubeconfig
from slipway_catalog.usecases import clusters, organizations
from slipway_catalog.usecases.deps import Deps
from slipway_contracts import new_event
from slipway_contracts.events.identity import OrganizationCreated
from slipway_libs.crypto import new_key_setting
from slipway_libs.errors import InvalidInput

pytestmark = pytest.mark.integration

SERVER = "https://k8s.example.com:6443"


def kubeconfig_text() -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "devstack",
            "contexts": [{"name": "devstack", "context": {"cluster": "c", "user": "u"}}],
            "clusters": [
                {
                    "name": "c",
                    "cluster": {"server": SERVER},
                }
            ],
            "users": [{"name": "u", "user": {"token": "bootstrap.token"}}],
        }
    )


def settings(path: Path | None) -> CatalogSettings:
    return CatalogSettings(
        database_url="unused", sealing_keys=new_key_setting("t1"), bootstrap_kubeconfig=path
    )


@pytest.fixture
def deps(tmp_path: Path) -> Deps:
    path = tmp_path / "slipway.kubeconfig"
    path.write_text(kubeconfig_text())
    return Deps.from_settings(settings(path))


def created(org_id: uuid.UUID) -> object:
    payload = OrganizationCreated(
        organization_id=org_id,
        name=f"org-{org_id.hex[:6]}",
        owner_id=uuid.uuid4(),
        created_at=datetime.now(UTC),
    )
    return new_event(payload, subject=str(org_id), source="identity", organization_id=org_id)


async def apply_created(pool, deps: Deps, org_id: uuid.UUID) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await organizations.on_created(conn, deps, created(org_id))


async def clusters_of(pool, deps: Deps, org_id: uuid.UUID) -> dict[str, dict]:
    async with pool.acquire() as conn:
        found = {}
        for row in await q.clusters(conn, org_id):
            creds = clusters.credentials(deps, row)
            found[row.name] = {"kind": row.kind, "api_url": row.api_url, "creds": creds}
        return found


async def test_the_first_organization_gets_the_cluster_and_later_ones_do_not(
    catalog_db, deps: Deps
) -> None:
    pool = catalog_db[1]
    first, second = uuid.uuid4(), uuid.uuid4()
    await apply_created(pool, deps, first)
    await apply_created(pool, deps, second)
    await apply_created(pool, deps, first)  # identity's event again: nothing twice

    mine = await clusters_of(pool, deps, first)
    assert sorted(mine) == ["devstack", "local"]
    assert mine["devstack"]["kind"] == "self_managed"
    assert mine["devstack"]["api_url"] == SERVER
    # sealed at rest like any registered cluster's, and usable
    access = parse_kubeconfig(mine["devstack"]["creds"]["kubeconfig"])
    assert access.server.url == SERVER
    assert sorted(await clusters_of(pool, deps, second)) == ["local"]


async def test_two_first_organizations_at_once_give_it_to_one(catalog_db, deps: Deps) -> None:
    pool = catalog_db[1]
    one, two = uuid.uuid4(), uuid.uuid4()
    async with pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        await organizations.on_created(conn, deps, created(one))
        # the second organization's event, applied while the first's is not committed yet
        second = asyncio.create_task(apply_created(pool, deps, two))
        async with pool.acquire() as watcher:
            for _ in range(200):
                waiting = await watcher.fetchval(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                )
                if waiting:
                    break
                await asyncio.sleep(0.05)
            else:
                pytest.fail("the second organization's transaction never waited for the first")
        await transaction.commit()
    await second
    assert sorted(await clusters_of(pool, deps, one)) == ["devstack", "local"]
    assert sorted(await clusters_of(pool, deps, two)) == ["local"]


async def test_without_the_setting_no_organization_gets_one(catalog_db) -> None:
    deps = Deps.from_settings(settings(None))
    org = uuid.uuid4()
    await apply_created(catalog_db[1], deps, org)
    assert sorted(await clusters_of(catalog_db[1], deps, org)) == ["local"]


def test_a_kubeconfig_the_platform_cannot_use_stops_the_service_at_start(tmp_path: Path) -> None:
    path = tmp_path / "bad.kubeconfig"
    path.write_text("clusters: []\n")
    with pytest.raises((InvalidInput, ValidationError)):
        Deps.from_settings(settings(path))
    with pytest.raises(FileNotFoundError):
        Deps.from_settings(settings(tmp_path / "missing"))
