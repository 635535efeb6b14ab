"""Deployed databases' connections (the deployer's DatabaseConnectionChanged) against the real
PostgreSQL and Kafka: newest version kept, password re-sealed at rest, built-ins in the resolved
view, secrets masked, and the reseal command."""

from __future__ import annotations

import base64
import uuid
from types import SimpleNamespace
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer

from slipway_catalog import bootstrap
from slipway_catalog.config import CatalogSettings
from slipway_catalog.events.subscribers import DEPLOYER_GROUP, consumers
from slipway_catalog.usecases import connections, variables
from slipway_catalog.usecases.deps import Deps
from slipway_contracts import Envelope, new_event
from slipway_contracts.events.deployer import SERVICE_TOPIC, DatabaseConnectionChanged
from slipway_libs.crypto import Sealer, new_key_setting
from slipway_libs.errors import PermanentError
from slipway_libs.inbox import EventHandler
from slipway_libs.testing.pipeline import running_consumer, wait_until
from slipway_resolver import resolve

pytestmark = pytest.mark.integration

PASSWORD = "pg-Secret/With@Chars"
APP = {
    "name": "web",
    "kind": "application",
    "git": {"url": "https://example.com/acme/web.git", "branch": "main"},
    "ports": [{"port": 8080, "protocol": "http", "public": True}],
}
DB = {"name": "main-db", "kind": "database", "engine": "postgresql"}  # the local cluster's version


@pytest.fixture
def deps() -> Deps:
    """The catalog's keys, with a transport key of its own (as between two machines)."""
    settings = CatalogSettings(
        database_url="unused",
        sealing_keys=new_key_setting("rest1"),
        transport_keys=new_key_setting("wire1"),
    )
    return Deps.from_settings(settings)


class Setup:
    def __init__(self, org: str, env: str, web: dict[str, Any], db: dict[str, Any]) -> None:
        self.org, self.env = uuid.UUID(org), uuid.UUID(env)
        self.web, self.db = web, db
        self.db_id = uuid.UUID(db["id"])


async def setup(api: httpx.AsyncClient) -> Setup:
    org = str(uuid.uuid4())
    clusters = (await api.get(f"/organizations/{org}/clusters")).json()["items"]
    project = (await api.post(f"/organizations/{org}/projects", json={"name": "Shop"})).json()
    env = await api.post(
        f"/projects/{project['id']}/environments",
        json={"name": "staging", "mode": "staging", "cluster_id": clusters[0]["id"]},
    )
    assert env.status_code == 201, env.text
    env_id = env.json()["id"]
    web = await api.post(f"/environments/{env_id}/services", json=APP)
    db = await api.post(f"/environments/{env_id}/services", json=DB)
    assert web.status_code == db.status_code == 201, (web.text, db.text)
    return Setup(org, env_id, web.json(), db.json())


def changed(
    deps: Deps,
    s: Setup,
    version: int,
    *,
    host: str = "main-db.internal",
    password: str = PASSWORD,
    deleted: bool = False,
    sealer: Sealer | None = None,
    aad: bytes | None = None,
) -> Envelope:
    sealed = (sealer or deps.transport).seal(password.encode(), aad=aad or s.db_id.bytes)
    payload = DatabaseConnectionChanged(
        service_id=s.db_id,
        environment_id=s.env,
        organization_id=s.org,
        engine="postgresql",
        host=host,
        port=6000 + version,
        user="shop_app",
        database="shop",
        password_sealed=base64.b64encode(sealed).decode(),
        version=version,
        deleted=deleted,
    )
    return new_event(payload, subject=str(s.db_id), source="deployer", organization_id=s.org)


def handler(deps: Deps) -> EventHandler:
    spec = next(c for c in consumers(deps) if c.group_id == DEPLOYER_GROUP)
    assert list(spec.topics) == [SERVICE_TOPIC] == ["deployer.service.v1"]
    found = spec.handlers[DatabaseConnectionChanged.event_type]
    assert callable(found)
    return found  # type: ignore[return-value]


async def apply(pool: asyncpg.Pool, deps: Deps, *envelopes: Envelope) -> None:
    handle = handler(deps)
    for envelope in envelopes:
        async with pool.acquire() as conn, conn.transaction():
            await handle(conn, envelope)


async def stored(pool: asyncpg.Pool, service_id: uuid.UUID) -> asyncpg.Record:
    return await pool.fetchrow(
        "SELECT * FROM database_connections WHERE service_id = $1", service_id
    )


async def resolved(api: httpx.AsyncClient, service_id: str) -> dict[str, dict[str, Any]]:
    answer = await api.get(f"/services/{service_id}/variables/resolved")
    assert answer.status_code == 200, answer.text
    assert "pg-Secret" not in answer.text and "With%40Chars" not in answer.text
    return {item["key"]: item for item in answer.json()["items"]}


async def test_newer_versions_win_older_ones_are_ignored_and_a_deletion_removes_the_values(
    api, catalog_db, deps
) -> None:
    pool = catalog_db[1]
    s = await setup(api)
    await apply(pool, deps, changed(deps, s, 5, host="h5"))
    row = await stored(pool, s.db_id)
    assert (row["version"], row["host"], row["port"], row["user"], row["database"]) == (
        5,
        "h5",
        6005,
        "shop_app",
        "shop",
    )
    assert (row["organization_id"], row["environment_id"], row["engine"]) == (
        s.org,
        s.env,
        "postgresql",
    )
    sealed = bytes(row["password_sealed"])
    assert PASSWORD.encode() not in sealed
    assert deps.at_rest.open(sealed, aad=s.db_id.bytes) == PASSWORD.encode()  # re-sealed at rest
    assert deps.at_rest.key_id(sealed) == "rest1"

    await apply(pool, deps, changed(deps, s, 3, host="h3"))  # older: ignored
    await apply(pool, deps, changed(deps, s, 5, host="again"))  # the same version: ignored
    assert (await stored(pool, s.db_id))["host"] == "h5"
    await apply(pool, deps, changed(deps, s, 7, host="h7", password="rotated"))
    row = await stored(pool, s.db_id)
    assert (row["version"], row["host"]) == (7, "h7")
    assert deps.at_rest.open(bytes(row["password_sealed"]), aad=s.db_id.bytes) == b"rotated"

    await apply(pool, deps, changed(deps, s, 8, deleted=True))
    row = await stored(pool, s.db_id)
    assert (row["version"], row["deleted"]) == (8, True)
    assert [row[c] for c in ("host", "port", "user", "database", "password_sealed")] == [None] * 5
    await apply(pool, deps, changed(deps, s, 6, host="h6"))  # older than the tombstone
    assert (await stored(pool, s.db_id))["deleted"]
    # gone from the built-ins: back to the service name and the engine's port
    view = await resolved(api, s.web["id"])
    assert view["SLIPWAY_MAIN_DB_HOST"]["value"] == "main-db"
    assert view["SLIPWAY_MAIN_DB_PORT"]["value"] == "5432"
    assert "SLIPWAY_MAIN_DB_PASSWORD" not in view and "SLIPWAY_MAIN_DB_USER" not in view

    await apply(pool, deps, changed(deps, s, 9, host="back"))  # deployed again
    row = await stored(pool, s.db_id)
    assert (row["deleted"], row["host"]) == (False, "back")


async def test_the_resolved_view_shows_the_connection_with_its_secrets_masked(
    api, catalog_db, deps
) -> None:
    pool = catalog_db[1]
    s = await setup(api)
    before = await resolved(api, s.web["id"])
    assert before["SLIPWAY_MAIN_DB_HOST"]["value"] == "main-db"
    assert "SLIPWAY_MAIN_DB_URL" not in before
    await apply(pool, deps, changed(deps, s, 1, host="10.1.2.3"))
    view = await resolved(api, s.web["id"])
    shown = {
        k: (view[k]["value"], view[k]["is_secret"], view[k]["kind"])
        for k in view
        if k.startswith("SLIPWAY_MAIN_DB_")
    }
    assert shown == {
        "SLIPWAY_MAIN_DB_HOST": ("10.1.2.3", False, "built_in"),
        "SLIPWAY_MAIN_DB_PORT": ("6001", False, "built_in"),
        "SLIPWAY_MAIN_DB_USER": ("shop_app", False, "built_in"),
        "SLIPWAY_MAIN_DB_DATABASE": ("shop", False, "built_in"),
        "SLIPWAY_MAIN_DB_PASSWORD": (None, True, "built_in"),
        "SLIPWAY_MAIN_DB_URL": (None, True, "built_in"),
    }
    # the same deterministic sources on every read
    assert await resolved(api, s.web["id"]) == view
    # users alias or interpolate them like any built-in; what uses a secret is secret
    alias = await api.post(
        "/variables",
        json={
            "scope": "service",
            "parent_id": s.web["id"],
            "key": "DATABASE_URL",
            "kind": "alias",
            "value": "SLIPWAY_MAIN_DB_URL",
        },
    )
    assert alias.status_code == 201, alias.text
    view = await resolved(api, s.web["id"])
    assert view["DATABASE_URL"]["is_secret"] and view["DATABASE_URL"]["value"] is None
    assert view["DATABASE_URL"]["via"] == ["SLIPWAY_MAIN_DB_URL"]
    # the values the deployer will hand to the service (the same shared resolver)
    async with pool.acquire() as conn:
        where = await variables.parent(conn, "service", uuid.UUID(s.web["id"]))
        values = resolve(await variables.view(conn, deps, where))
    assert values["SLIPWAY_MAIN_DB_PASSWORD"].value == PASSWORD
    assert values["DATABASE_URL"].value == (
        "postgresql://shop_app:pg-Secret%2FWith%40Chars@10.1.2.3:6001/shop"
    )


async def test_a_password_that_does_not_open_is_a_permanent_error(api, catalog_db, deps) -> None:
    pool = catalog_db[1]
    s = await setup(api)
    stranger = Sealer.from_setting(new_key_setting("other"))
    for bad in (
        changed(deps, s, 1, sealer=stranger),  # another transport key
        changed(deps, s, 1, aad=uuid.uuid4().bytes),  # sealed for another service
        changed(deps, s, 1, sealer=deps.at_rest),  # the at-rest key is not the transport key
    ):
        with pytest.raises(PermanentError, match="does not open"):
            await apply(pool, deps, bad)
    garbled = changed(deps, s, 1)
    garbled.data["password_sealed"] = "not base64!"
    with pytest.raises(PermanentError):
        await apply(pool, deps, garbled)
    assert await stored(pool, s.db_id) is None
    text = b"pg-Secret"
    assert text not in repr(await pool.fetch("SELECT * FROM database_connections")).encode()


async def test_reseal_moves_database_passwords_to_the_new_key(api, catalog_db, deps) -> None:
    pool = catalog_db[1]
    s = await setup(api)
    await apply(pool, deps, changed(deps, s, 1))
    old_kid, old_key = next(iter(deps.at_rest.keys.items()))
    new_item = new_key_setting("rest2")
    rotated_sealer = Sealer.from_setting(
        f"{new_item},{old_kid}:{base64.b64encode(old_key).decode()}"
    )
    rotated = Deps(at_rest=rotated_sealer, transport=deps.transport, local_runtime=True)
    container = SimpleNamespace(parts=rotated, require_pool=lambda: pool)
    await bootstrap._reseal(container, [])  # type: ignore[arg-type]  # the operator command
    async with pool.acquire() as conn, conn.transaction():
        assert await connections.reseal_all(conn, rotated) == 0  # done already
    sealed = bytes((await stored(pool, s.db_id))["password_sealed"])
    assert rotated_sealer.key_id(sealed) == "rest2"
    only_new = Sealer.from_setting(new_item)
    assert only_new.open(sealed, aad=s.db_id.bytes) == PASSWORD.encode()
    # the resolved view reads it with the new key
    async with pool.acquire() as conn:
        found = await connections.of_environment(conn, rotated, s.env)
    assert found[s.db_id].password == PASSWORD


async def test_the_consumer_applies_redelivered_and_out_of_order_events_from_kafka(
    api, catalog_db, deps, devstack, topic_factory
) -> None:
    pool = catalog_db[1]
    s = await setup(api)
    topic = await topic_factory(partitions=1)
    newest = changed(deps, s, 4, host="h4")
    events = [changed(deps, s, 2, host="h2"), newest, changed(deps, s, 3, host="h3"), newest]
    producer = AIOKafkaProducer(**devstack.kafka.options())
    await producer.start()
    try:
        for envelope in events:
            await producer.send_and_wait(topic, envelope.to_json(), key=envelope.subject.encode())
    finally:
        await producer.stop()
    spec = next(c for c in consumers(deps) if c.group_id == DEPLOYER_GROUP)
    group = f"{DEPLOYER_GROUP}-{uuid.uuid4().hex[:8]}"

    async def inbox_done() -> bool:
        n = await pool.fetchval("SELECT count(*) FROM inbox WHERE consumer_group = $1", group)
        return bool(n == 3)  # the redelivered event once

    async with running_consumer(pool, devstack.kafka, topic, group, dict(spec.handlers)):
        await wait_until(inbox_done)
    row = await stored(pool, s.db_id)
    assert (row["version"], row["host"]) == (4, "h4")
    view = await resolved(api, s.web["id"])
    assert view["SLIPWAY_MAIN_DB_HOST"]["value"] == "h4"
