"""The catalog through the public API: identity, catalog and gateway as real processes, the real
broker and database. Authorization resolves catalog resources from the gateway's index."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from slipway_contracts import REGISTRY, Envelope
from slipway_contracts.events.catalog import CLUSTER_TOPIC, PROJECT_TOPIC
from slipway_libs.testing.platform import Platform
from slipway_libs.testing.public_api import (
    User,
    add_member,
    create_org,
    eventually,
    sign_up,
    token_auth,
)

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

APP = {
    "name": "web",
    "kind": "application",
    "git": {"url": "https://example.com/acme/web.git"},
    "ports": [{"port": 8080, "public": True}],
}


@pytest.fixture(scope="module")
async def platform(platform_factory) -> Platform:
    return await platform_factory(["identity", "catalog", "deployer", "gateway"])


@pytest.fixture
async def api(platform: Platform):
    async with httpx.AsyncClient(
        base_url=f"{platform.url('gateway')}/api/v1", timeout=15
    ) as client:
        yield client


async def setup_org(api: httpx.AsyncClient) -> tuple[User, str, str, str]:
    owner = await sign_up(api, "Owner")
    org = await create_org(api, owner)
    clusters = await api.get(f"/organizations/{org}/clusters", headers=owner.auth)
    assert clusters.status_code == 200, clusters.text
    local = clusters.json()["items"]
    assert [c["kind"] for c in local] == ["local"]
    project = await api.post(
        f"/organizations/{org}/projects", json={"name": "Shop"}, headers=owner.auth
    )
    assert project.status_code == 201, project.text
    return owner, org, project.json()["id"], local[0]["id"]


async def test_what_you_create_is_usable_at_once_and_strangers_see_nothing(api) -> None:
    owner, _, project, cluster = await setup_org(api)
    env = await api.post(
        f"/projects/{project}/environments",
        headers=owner.auth,
        json={"name": "staging", "mode": "staging", "cluster_id": cluster},
    )
    assert env.status_code == 201, env.text
    service = await api.post(
        f"/environments/{env.json()['id']}/services", json=APP, headers=owner.auth
    )
    assert service.status_code == 201, service.text
    secret = await api.post(
        "/variables",
        headers=owner.auth,
        json={
            "scope": "service",
            "parent_id": service.json()["id"],
            "key": "TOKEN",
            "value": "s3cr3t",
            "is_secret": True,
        },
    )
    assert secret.status_code == 201 and "value" not in secret.json()
    read = await api.get(f"/variables/{secret.json()['id']}", headers=owner.auth)
    assert read.status_code == 200 and "value" not in read.json()
    eve = await sign_up(api, "Eve")
    for path, code in [
        (f"/projects/{project}", "PROJECT_NOT_FOUND"),
        (f"/environments/{env.json()['id']}", "ENVIRONMENT_NOT_FOUND"),
        (f"/services/{service.json()['id']}", "SERVICE_NOT_FOUND"),
        (f"/variables/{secret.json()['id']}", "VARIABLE_NOT_FOUND"),
        (f"/clusters/{cluster}", "CLUSTER_NOT_FOUND"),
        (f"/environments/{uuid.uuid4()}", "ENVIRONMENT_NOT_FOUND"),
    ]:
        response = await api.get(path, headers=eve.auth)
        assert (response.status_code, response.json()["error"]["code"]) == (404, code), path
    hijack = await api.post(
        "/variables",
        headers=eve.auth,
        json={"scope": "environment", "parent_id": env.json()["id"], "key": "X", "value": "1"},
    )
    assert hijack.status_code == 404


async def test_roles_and_custom_roles_per_environment_mode(api) -> None:
    owner, org, project, cluster = await setup_org(api)
    envs = {}
    for mode in ("staging", "production"):
        made = await api.post(
            f"/projects/{project}/environments",
            headers=owner.auth,
            json={"name": mode, "mode": mode, "cluster_id": cluster},
        )
        envs[mode] = made.json()["id"]
    viewer = await sign_up(api, "Viewer")
    await add_member(api, org, owner, viewer, "viewer")
    assert (
        await api.get(f"/environments/{envs['production']}", headers=viewer.auth)
    ).status_code == 200
    denied = await api.post(
        f"/environments/{envs['staging']}/services", json=APP, headers=viewer.auth
    )
    assert (denied.status_code, denied.json()["error"]["code"]) == (403, "FORBIDDEN")
    role = await api.post(
        f"/organizations/{org}/roles",
        headers=owner.auth,
        json={
            "name": "Staging deployer",
            "clusters": [{"cluster_id": cluster, "permission": "env_creator"}],
            "projects": [
                {
                    "project_id": project,
                    "environments": {"staging": "manager", "production": "no_access"},
                }
            ],
        },
    )
    assert role.status_code == 201, role.text
    dev = await sign_up(api, "Dev")
    await add_member(api, org, owner, dev, role.json()["id"])
    staged = await api.post(f"/environments/{envs['staging']}/services", json=APP, headers=dev.auth)
    assert staged.status_code == 201, staged.text
    prod = await api.get(f"/environments/{envs['production']}", headers=dev.auth)
    assert prod.status_code == 403
    listed = await api.get(f"/projects/{project}/environments", headers=dev.auth)
    assert [e["mode"] for e in listed.json()["items"]] == ["staging"]
    new_prod = await api.post(
        f"/projects/{project}/environments",
        headers=dev.auth,
        json={"name": "prod-2", "mode": "production", "cluster_id": cluster},
    )
    assert new_prod.status_code == 403
    new_dev = await api.post(
        f"/projects/{project}/environments",
        headers=dev.auth,
        json={"name": "stg-2", "mode": "staging", "cluster_id": cluster},
    )
    assert new_dev.status_code == 201, new_dev.text
    token = await api.post(
        f"/organizations/{org}/api-tokens",
        headers=owner.auth,
        json={"name": "ci", "role": "viewer"},
    )
    readonly = await api.patch(
        f"/projects/{project}", json={"name": "x"}, headers=token_auth(token.json()["token"])
    )
    assert readonly.status_code == 403


async def test_a_plain_kafka_consumer_rebuilds_the_catalog_from_the_events(api, platform) -> None:
    owner, org, project, cluster = await setup_org(api)
    env = (
        await api.post(
            f"/projects/{project}/environments",
            headers=owner.auth,
            json={"name": "staging", "mode": "staging", "cluster_id": cluster},
        )
    ).json()
    await api.post(f"/environments/{env['id']}/services", json=APP, headers=owner.auth)
    db = (
        await api.post(
            f"/environments/{env['id']}/services",
            headers=owner.auth,
            json={"name": "db", "kind": "database", "engine": "postgresql"},
        )
    ).json()
    await api.delete(f"/services/{db['id']}", headers=owner.auth)
    await api.post(f"/environments/{env['id']}/clone", headers=owner.auth, json={"name": "copy"})
    expected = await _api_view(api, owner, org)

    async def rebuilt_matches() -> bool:
        return await _rebuild(platform, org) == expected

    await eventually(rebuilt_matches, within_s=60)


async def _api_view(api: httpx.AsyncClient, owner: User, org: str) -> dict[str, Any]:
    view: dict[str, Any] = {"projects": {}, "environments": {}, "services": {}}
    for p in (await api.get(f"/organizations/{org}/projects", headers=owner.auth)).json()["items"]:
        view["projects"][p["id"]] = p["name"]
        envs = (await api.get(f"/projects/{p['id']}/environments", headers=owner.auth)).json()
        for e in envs["items"]:
            view["environments"][e["id"]] = (e["name"], e["mode"], e["cluster_id"])
            svcs = await api.get(f"/environments/{e['id']}/services", headers=owner.auth)
            for s in svcs.json()["items"]:
                view["services"][s["id"]] = (s["name"], s["kind"], e["id"])
    return view


async def _rebuild(platform: Platform, org: str) -> dict[str, Any]:
    """Only the contracts: read the topics from the start, newest version of each entity wins."""
    consumer = AIOKafkaConsumer(
        platform.prefix + CLUSTER_TOPIC,
        platform.prefix + PROJECT_TOPIC,
        **platform.kafka.options(),
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    try:
        while batches := await consumer.getmany(timeout_ms=1000):
            for records in batches.values():
                for record in records:
                    envelope = Envelope.from_json(record.value)
                    payload = REGISTRY.parse(envelope).model_dump(mode="json")
                    if payload["organization_id"] != org:
                        continue
                    key = (
                        envelope.type,
                        json.dumps([v for k, v in payload.items() if k.endswith("_id")][:1]),
                    )
                    if key not in latest or latest[key]["version"] < payload["version"]:
                        latest[key] = payload
    finally:
        await consumer.stop()
    view: dict[str, Any] = defaultdict(dict)
    view.update({"projects": {}, "environments": {}, "services": {}})
    for (event_type, _), state in latest.items():
        if state.get("deleted"):
            continue
        if event_type == "catalog.ProjectChanged":
            view["projects"][state["project_id"]] = state["name"]
        elif event_type == "catalog.EnvironmentChanged":
            view["environments"][state["environment_id"]] = (
                state["name"],
                state["mode"],
                state["cluster_id"],
            )
        elif event_type == "catalog.ServiceChanged":
            view["services"][state["service_id"]] = (
                state["name"],
                state["kind"],
                state["environment_id"],
            )
    return dict(view)


async def test_the_deployer_keeps_its_own_copy_of_the_catalog(api, platform) -> None:
    owner, _, project, cluster = await setup_org(api)
    env = (
        await api.post(
            f"/projects/{project}/environments",
            headers=owner.auth,
            json={"name": "staging", "mode": "staging", "cluster_id": cluster},
        )
    ).json()
    web = (
        await api.post(f"/environments/{env['id']}/services", json=APP, headers=owner.auth)
    ).json()
    await api.post(
        "/variables",
        headers=owner.auth,
        json={
            "scope": "service",
            "parent_id": web["id"],
            "key": "TOKEN",
            "value": "s3cr3t",
            "is_secret": True,
        },
    )
    await api.patch(
        f"/services/{web['id']}", json={"min_instances": 2, "max_instances": 2}, headers=owner.auth
    )
    deployer = await asyncpg.connect(platform.env["SLIPWAY_DEPLOYER_DATABASE_URL"])
    try:

        async def copied() -> bool:
            row = await deployer.fetchrow(
                "SELECT * FROM catalog_services WHERE id = $1", uuid.UUID(web["id"])
            )
            return row is not None and json.loads(row["spec"])["min_instances"] == 2

        await eventually(copied, within_s=60)
        secret = await deployer.fetchrow(
            "SELECT value, value_sealed, is_secret FROM catalog_variables WHERE key = 'TOKEN'"
            " AND parent_id = $1",
            uuid.UUID(web["id"]),
        )
        assert secret["is_secret"] and secret["value"] is None and secret["value_sealed"]
        assert "s3cr3t" not in secret["value_sealed"]
        stages = await deployer.fetch(
            "SELECT name FROM catalog_stages WHERE environment_id = $1 ORDER BY position",
            uuid.UUID(env["id"]),
        )
        assert [s["name"] for s in stages][:2] == ["databases", "jobs"]
        await api.delete(f"/services/{web['id']}", headers=owner.auth)

        async def tombstoned() -> bool:
            return bool(
                await deployer.fetchval(
                    "SELECT deleted FROM catalog_services WHERE id = $1", uuid.UUID(web["id"])
                )
            )

        await eventually(tombstoned, within_s=60)
    finally:
        await deployer.close()


async def test_the_cli_drives_the_public_api(platform, tmp_path) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {
        **os.environ,
        "SLIPWAY_API_URL": platform.url("gateway"),
        "SLIPWAY_CONFIG_DIR": str(tmp_path),
    }
    slipway = str(Path(sys.executable).with_name("slipway"))

    def run(*args: str) -> str:
        done = subprocess.run([slipway, *args], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout.strip()

    email = f"cli-{uuid.uuid4().hex[:8]}@example.com"
    run("signup", "--email", email, "--name", "Cli User", "--password", "correct horse battery")
    run("login", "--email", email, "--password", "correct horse battery")
    assert oct((tmp_path / "session.json").stat().st_mode & 0o777) == "0o600"
    org = run("orgs", "create", "Cli Org")
    project = run("projects", "create", "--org", org, "Cli Project")
    env_id = run("envs", "create", "--project", project, "--org", org, "--mode", "staging", "dev")
    assert "dev" in run("envs", "list", "--project", project)
    me = json.loads(run("api", "GET", "/me"))
    assert me["email"] == email
    wrong = subprocess.run(
        [slipway, "api", "GET", f"/environments/{uuid.uuid4()}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert wrong.returncode == 1 and "ENVIRONMENT_NOT_FOUND" in wrong.stderr
    assert env_id
