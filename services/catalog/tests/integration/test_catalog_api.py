"""The catalog's internal API against the real PostgreSQL (its migrations applied)."""

from __future__ import annotations

import base64
import json
import uuid

import httpx
import pytest

pytestmark = pytest.mark.integration

APP = {
    "name": "web",
    "kind": "application",
    "git": {"url": "https://example.com/acme/web.git", "branch": "main"},
    "ports": [{"port": 8080, "protocol": "http", "public": True}],
}
DB = {"name": "db", "kind": "database", "engine": "postgresql"}  # the local cluster's version


async def org_with_env(api: httpx.AsyncClient) -> tuple[str, str, str, str]:
    org = str(uuid.uuid4())
    clusters = (await api.get(f"/organizations/{org}/clusters")).json()["items"]
    assert [(c["name"], c["kind"]) for c in clusters] == [("local", "local")]
    project = await api.post(f"/organizations/{org}/projects", json={"name": "Shop"})
    assert project.status_code == 201, project.text
    env = await api.post(
        f"/projects/{project.json()['id']}/environments",
        json={"name": "staging", "mode": "staging", "cluster_id": clusters[0]["id"]},
    )
    assert env.status_code == 201, env.text
    return org, project.json()["id"], env.json()["id"], clusters[0]["id"]


async def test_projects_are_unique_per_organization_case_insensitive(api) -> None:
    org, _, _, _ = await org_with_env(api)
    again = await api.post(f"/organizations/{org}/projects", json={"name": "SHOP"})
    assert (again.status_code, again.json()["error"]["code"]) == (409, "PROJECT_NAME_TAKEN")
    other_org = await api.post(f"/organizations/{uuid.uuid4()}/projects", json={"name": "Shop"})
    assert other_org.status_code == 201


async def test_environment_rules_mode_and_cluster(api) -> None:
    _, project, env, cluster = await org_with_env(api)
    preview = await api.post(
        f"/projects/{project}/environments",
        json={"name": "pr-1", "mode": "preview", "cluster_id": cluster},
    )
    assert (preview.status_code, preview.json()["error"]["code"]) == (422, "INVALID_MODE")
    foreign = await api.post(
        f"/projects/{project}/environments",
        json={"name": "x", "mode": "staging", "cluster_id": str(uuid.uuid4())},
    )
    assert foreign.json()["error"]["code"] == "CLUSTER_NOT_FOUND"
    moved = await api.patch(f"/environments/{env}", json={"cluster_id": str(uuid.uuid4())})
    assert moved.json()["error"]["code"] == "CLUSTER_IMMUTABLE"
    stages = (await api.get(f"/environments/{env}/stages")).json()["items"]
    assert [s["name"] for s in stages] == [
        "databases",
        "jobs",
        "containers",
        "applications",
        "helm",
    ]


async def test_services_validation_names_and_default_stages(api) -> None:
    _, _, env, _ = await org_with_env(api)
    web = await api.post(f"/environments/{env}/services", json=APP)
    assert web.status_code == 201, web.text
    assert web.json()["ports"][0]["port"] == 8080 and web.json()["kind"] == "application"
    dup = await api.post(f"/environments/{env}/services", json=APP)
    assert (dup.status_code, dup.json()["error"]["code"]) == (409, "SERVICE_NAME_TAKEN")
    bad = await api.post(
        f"/environments/{env}/services", json={**APP, "name": "api", "ports": [{"port": 70000}]}
    )
    assert bad.status_code == 422
    assert "ports.0.port" in [d["path"] for d in bad.json()["error"]["details"]]
    database = await api.post(f"/environments/{env}/services", json=DB)
    stages = {
        s["id"]: s["name"] for s in (await api.get(f"/environments/{env}/stages")).json()["items"]
    }
    assert stages[database.json()["stage_id"]] == "databases"
    assert stages[web.json()["stage_id"]] == "applications"
    patched = await api.patch(
        f"/services/{web.json()['id']}", json={"min_instances": 2, "max_instances": 3}
    )
    assert patched.status_code == 200 and patched.json()["max_instances"] == 3
    kind = await api.patch(f"/services/{web.json()['id']}", json={"kind": "container"})
    assert kind.json()["error"]["code"] == "KIND_IMMUTABLE"


async def test_secrets_are_write_only_and_sealed_at_rest(api, catalog_db) -> None:
    _, project, env, _ = await org_with_env(api)
    web = (await api.post(f"/environments/{env}/services", json=APP)).json()
    secret = await api.post(
        "/variables",
        json={
            "scope": "environment",
            "parent_id": env,
            "key": "API_KEY",
            "value": "hunter2-very-secret",
            "is_secret": True,
        },
    )
    assert secret.status_code == 201 and "value" not in secret.json()
    greeting = await api.post(
        "/variables",
        json={
            "scope": "environment",
            "parent_id": env,
            "key": "GREETING",
            "value": "hi {{API_KEY}}",
        },
    )
    assert greeting.status_code == 201, greeting.text
    # a project variable cannot see an environment's: refused, naming the missing key
    blind = await api.post(
        "/variables",
        json={"scope": "project", "parent_id": project, "key": "OOPS", "value": "{{API_KEY}}"},
    )
    assert blind.json()["error"]["code"] == "INTERPOLATION_MISSING"
    listed = (
        await api.get("/variables", params={"scope": "environment", "parent_id": env})
    ).json()["items"]
    assert "value" not in listed[0]
    raw = await catalog_db[1].fetchrow("SELECT * FROM variables WHERE key = 'API_KEY'")
    assert raw["value"] is None and b"hunter2" not in bytes(raw["value_sealed"])
    view = (await api.get(f"/services/{web['id']}/variables/resolved")).json()["items"]
    by_key = {v["key"]: v for v in view}
    assert by_key["API_KEY"]["value"] is None and by_key["GREETING"]["value"] is None
    assert by_key["GREETING"]["is_secret"]  # it interpolates a secret
    assert by_key["SLIPWAY_SERVICE_ID"]["value"] == web["id"]
    assert "hunter2" not in str(view)


async def test_a_secret_value_is_absent_from_every_answer(api) -> None:
    """The variable routes answer through ``VariableOut``, whose ``value`` defaults to null: a
    secret's answers must still leave it out (not null, not the value), a replay included."""
    _, _, env, _ = await org_with_env(api)
    body = {
        "scope": "environment",
        "parent_id": env,
        "key": "TOKEN",
        "value": "s3cret-token-value",
        "is_secret": True,
    }
    once = {"Idempotency-Key": f"secret-{uuid.uuid4()}"}
    first = await api.post("/variables", json=body, headers=once)
    replay = await api.post("/variables", json=body, headers=once)
    assert (first.status_code, replay.status_code) == (201, 201), replay.text
    assert replay.headers["Idempotent-Replayed"] == "true" and replay.json() == first.json()
    secret = first.json()["id"]
    read = await api.get(f"/variables/{secret}")
    patched = await api.patch(f"/variables/{secret}", json={"value": "rotated-s3cret"})
    assert (read.status_code, patched.status_code) == (200, 200), patched.text
    listed = (
        await api.get("/variables", params={"scope": "environment", "parent_id": env})
    ).json()["items"]
    answers = [first.json(), replay.json(), read.json(), patched.json(), *listed]
    assert all("value" not in a and a["is_secret"] for a in answers), answers
    assert "s3cret" not in str(answers)
    plain = await api.post("/variables", json={**body, "key": "PLAIN", "is_secret": False})
    assert plain.json()["value"] == "s3cret-token-value"


async def test_variable_cycles_and_reserved_keys_are_refused(api) -> None:
    _, project, env, _ = await org_with_env(api)
    ok = await api.post(
        "/variables",
        json={"scope": "project", "parent_id": project, "key": "A", "value": "{{B}}-x"},
    )
    assert ok.status_code == 422 and ok.json()["error"]["code"] == "INTERPOLATION_MISSING"
    await api.post(
        "/variables", json={"scope": "project", "parent_id": project, "key": "B", "value": "b"}
    )
    await api.post(
        "/variables",
        json={"scope": "project", "parent_id": project, "key": "A", "value": "{{B}}-x"},
    )
    b_id = next(
        v["id"]
        for v in (
            await api.get("/variables", params={"scope": "project", "parent_id": project})
        ).json()["items"]
        if v["key"] == "B"
    )
    cycle = await api.patch(f"/variables/{b_id}", json={"value": "{{A}}"})
    assert (cycle.status_code, cycle.json()["error"]["code"]) == (422, "VARIABLE_CYCLE")
    reserved = await api.post(
        "/variables",
        json={"scope": "environment", "parent_id": env, "key": "SLIPWAY_X", "value": "1"},
    )
    assert reserved.json()["error"]["code"] == "RESERVED_KEY"


async def test_clone_copies_everything_and_is_independent(api, catalog_db, deps) -> None:
    _, _, env, _ = await org_with_env(api)
    web = (await api.post(f"/environments/{env}/services", json=APP)).json()
    await api.post(f"/environments/{env}/services", json=DB)
    await api.post(
        "/variables",
        json={
            "scope": "service",
            "parent_id": web["id"],
            "key": "TOKEN",
            "value": "s3cr3t-value",
            "is_secret": True,
        },
    )
    await api.post(
        "/variables",
        json={"scope": "environment", "parent_id": env, "key": "LEVEL", "value": "debug"},
    )
    await api.put(
        f"/environments/{env}/deployment-rule",
        json={
            "auto_stop": True,
            "timezone": "Europe/Paris",
            "weekdays": ["mon", "fri"],
            "stop_time": "19:00",
        },
    )
    cloned = await api.post(
        f"/environments/{env}/clone", json={"name": "copy", "mode": "development"}
    )
    assert cloned.status_code == 201, cloned.text
    copy = cloned.json()["id"]
    assert cloned.json()["mode"] == "development" and cloned.json()["cloned_from"] == env

    def strip(items: list[dict[str, object]]) -> list[dict[str, object]]:
        ignored = {"id", "environment_id", "stage_id", "created_at", "updated_at", "parent_id"}
        ignored.add("resource_version")  # each copy is a change of its own
        return sorted(({k: v for k, v in i.items() if k not in ignored} for i in items), key=str)

    source_services = (await api.get(f"/environments/{env}/services")).json()["items"]
    copy_services = (await api.get(f"/environments/{copy}/services")).json()["items"]
    assert strip(source_services) == strip(copy_services)
    rule = (await api.get(f"/environments/{copy}/deployment-rule")).json()
    assert rule["timezone"] == "Europe/Paris" and rule["weekdays"] == ["mon", "fri"]
    secrets = await catalog_db[1].fetch(
        "SELECT id, environment_id, value_sealed FROM variables WHERE key = 'TOKEN'"
    )
    clear = {
        r["environment_id"]: deps.at_rest.open(bytes(r["value_sealed"]), aad=r["id"].bytes)
        for r in secrets
    }
    assert clear == {uuid.UUID(env): b"s3cr3t-value", uuid.UUID(copy): b"s3cr3t-value"}
    copy_web = next(s for s in copy_services if s["name"] == "web")
    await api.patch(f"/services/{copy_web['id']}", json={"min_instances": 3, "max_instances": 3})
    source_web = (await api.get(f"/services/{web['id']}")).json()
    assert source_web["min_instances"] == 1


async def test_stages_reorder_move_and_rules_validation(api) -> None:
    _, _, env, _ = await org_with_env(api)
    web = (await api.post(f"/environments/{env}/services", json=APP)).json()
    stages = (await api.get(f"/environments/{env}/stages")).json()["items"]
    first = await api.post(f"/environments/{env}/stages", json={"name": "warmup", "position": 0})
    assert first.status_code == 201
    order = [s["id"] for s in (await api.get(f"/environments/{env}/stages")).json()["items"]]
    assert order[0] == first.json()["id"]
    reordered = await api.put(
        f"/environments/{env}/stages/order", json={"stage_ids": list(reversed(order))}
    )
    assert [s["id"] for s in reordered.json()["items"]] == list(reversed(order))
    incomplete = await api.put(f"/environments/{env}/stages/order", json={"stage_ids": order[:2]})
    assert incomplete.json()["error"]["code"] == "INVALID_STAGE_ORDER"
    moved = await api.put(f"/services/{web['id']}/stage", json={"stage_id": first.json()["id"]})
    assert moved.json()["stage_id"] == first.json()["id"]
    busy = await api.delete(f"/stages/{first.json()['id']}")
    assert busy.json()["error"]["code"] == "STAGE_NOT_EMPTY"
    assert stages
    bad_rule = await api.put(
        f"/environments/{env}/deployment-rule", json={"auto_stop": True, "timezone": "Mars/Base"}
    )
    assert bad_rule.status_code == 422


async def test_self_managed_cluster_credentials_are_sealed_and_checked(
    api, catalog_db, deps
) -> None:
    org = str(uuid.uuid4())
    created = await api.post(
        f"/organizations/{org}/clusters",
        # a name that never resolves: saved (it may resolve later), unreachable when checked
        json={
            "name": "prod-k8s",
            "api_url": "https://k8s.example.invalid:6443",
            "token": "kube-token-123",
        },
    )
    assert created.status_code == 201, created.text
    assert "token" not in created.json()
    raw = await catalog_db[1].fetchrow(
        "SELECT credentials_sealed FROM clusters WHERE id = $1", uuid.UUID(created.json()["id"])
    )
    assert b"kube-token-123" not in bytes(raw["credentials_sealed"])
    # the deployer's copy: the access, sealed with the transport key for this cluster only
    cluster_id = uuid.UUID(created.json()["id"])
    event = await catalog_db[1].fetchrow(
        "SELECT payload FROM outbox WHERE event_type = 'catalog.ClusterChanged' AND key = $1",
        str(cluster_id),
    )
    assert "kube-token-123" not in event["payload"]
    data = json.loads(event["payload"])["data"]
    sealed = base64.b64decode(data["credentials_sealed"])
    assert json.loads(deps.transport.open(sealed, aad=cluster_id.bytes)) == {
        "api_url": "https://k8s.example.invalid:6443",
        "token": "kube-token-123",
        "ca_cert": None,
        "insecure": False,
    }
    assert "helm" in data["capabilities"]["kinds"]
    check = await api.post(f"/clusters/{created.json()['id']}/check")
    assert check.status_code == 200, check.text
    assert check.json() == {
        "ok": False,
        "kind": "self_managed",
        "reason": "UNREACHABLE",
        "message": "The cluster's API server could not be reached.",
    }
    insecure = await api.post(
        f"/organizations/{org}/clusters",
        json={"name": "x", "api_url": "http://plain", "token": "t"},
    )
    assert insecure.status_code == 422


async def test_sealing_key_rotation_keeps_old_and_new_secrets_readable(
    api, catalog_db, deps
) -> None:
    from slipway_catalog.usecases import variables
    from slipway_catalog.usecases.deps import Deps
    from slipway_libs.crypto import Sealer, new_key_setting

    _, _, env, _ = await org_with_env(api)
    old = await api.post(
        "/variables",
        json={
            "scope": "environment",
            "parent_id": env,
            "key": "OLD",
            "value": "old-value",
            "is_secret": True,
        },
    )
    old_kid, old_secret = next(iter(deps.at_rest.keys.items()))
    new_item = new_key_setting("t2")
    # the new key goes first (it seals from now on); the old one stays to open what it sealed
    rotated_sealer = Sealer.from_setting(
        f"{new_item},{old_kid}:{base64.b64encode(old_secret).decode()}"
    )
    rotated = Deps(at_rest=rotated_sealer, transport=rotated_sealer, local_runtime=True)
    pool = catalog_db[1]
    async with pool.acquire() as conn, conn.transaction():
        moved = await variables.reseal_all(conn, rotated)
    assert moved >= 1
    row = await pool.fetchrow(
        "SELECT id, value_sealed FROM variables WHERE id = $1", uuid.UUID(old.json()["id"])
    )
    assert rotated_sealer.key_id(bytes(row["value_sealed"])) == "t2"
    only_new = Sealer.from_setting(new_item)
    assert only_new.open(bytes(row["value_sealed"]), aad=row["id"].bytes) == b"old-value"
