"""Clusters through the public API (issue 14, item 5): what each cluster advertises it can run,
services refused at creation when the environment's cluster cannot run them (with a stable code
and what it offers), a database's default version taken from the cluster, `kind: managed`
refused, another tenant's cluster a 404 — identity, catalog and gateway as real processes.

With the devstack's Kubernetes (``SLIPWAY_DEVSTACK_KUBERNETES=1``), the check is made against
its real kube-apiserver: version, nodes (kwok's) and the permissions of Slipway's account, and
of an account granted nothing.
"""

from __future__ import annotations

import base64
import subprocess
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from slipway_libs.testing.platform import Platform
from slipway_libs.testing.plugin import KUBERNETES_SWITCH
from slipway_libs.testing.public_api import User, create_org, sign_up

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

LOCAL_KINDS = ["application", "container", "database", "cronjob", "lifecycle"]
ALL_KINDS = [*LOCAL_KINDS, "helm"]
HELM = {
    "name": "cache",
    "kind": "helm",
    "chart": {
        "source": "repository",
        "repository_url": "https://charts.example.com",
        "name": "redis",
        "version": "1.2.3",
    },
}


def host_postgresql_major() -> str:
    """What the deployer's local runtime starts: the newest /usr/lib/postgresql/<major>."""
    root = Path("/usr/lib/postgresql")
    majors = sorted(
        int(d.name) for d in root.glob("*") if d.name.isdigit() and (d / "bin").is_dir()
    )
    if not majors:
        pytest.fail("no PostgreSQL under /usr/lib/postgresql: the devstack needs one")
    return str(majors[-1])


@pytest.fixture(scope="module")
async def platform(platform_factory, devstack) -> Platform:
    api = devstack.env.get("SLIPWAY_KUBERNETES_API")
    # the devstack's API server is on loopback: the platform connects to it only allow-listed
    allow = {"SLIPWAY_EGRESS_ALLOW": urlsplit(api).netloc} if api else {}
    return await platform_factory(["identity", "catalog", "gateway"], extra_env=allow)


@pytest.fixture
async def api(platform: Platform):
    async with httpx.AsyncClient(
        base_url=f"{platform.url('gateway')}/api/v1", timeout=30
    ) as client:
        yield client


async def owner_with_project(api: httpx.AsyncClient) -> tuple[User, str, str]:
    owner = await sign_up(api, "Owner")
    org = await create_org(api, owner)
    project = await api.post(
        f"/organizations/{org}/projects", json={"name": "Shop"}, headers=owner.auth
    )
    assert project.status_code == 201, project.text
    return owner, org, project.json()["id"]


async def register(
    api: httpx.AsyncClient, owner: User, org: str, body: dict[str, Any]
) -> dict[str, Any]:
    created = await api.post(f"/organizations/{org}/clusters", json=body, headers=owner.auth)
    assert created.status_code == 201, created.text
    return created.json()


async def unreachable_cluster(api: httpx.AsyncClient, owner: User, org: str) -> dict[str, Any]:
    # a name that never resolves: saved (it may resolve later), never connected to here
    return await register(
        api,
        owner,
        org,
        {"name": "prod", "api_url": "https://k8s.example.invalid:6443", "token": "t0ken"},
    )


async def environment(
    api: httpx.AsyncClient, owner: User, project: str, cluster: str, name: str
) -> str:
    env = await api.post(
        f"/projects/{project}/environments",
        headers=owner.auth,
        json={"name": name, "mode": "staging", "cluster_id": cluster},
    )
    assert env.status_code == 201, env.text
    return env.json()["id"]


async def local_cluster(api: httpx.AsyncClient, owner: User, org: str) -> dict[str, Any]:
    listed = await api.get(f"/organizations/{org}/clusters", headers=owner.auth)
    assert listed.status_code == 200, listed.text
    (local,) = [c for c in listed.json()["items"] if c["kind"] == "local"]
    return local


async def test_clusters_advertise_what_they_can_run(api) -> None:
    owner, org, _ = await owner_with_project(api)
    major = host_postgresql_major()
    local = await local_cluster(api, owner, org)
    assert local["capabilities"] == {
        "kinds": LOCAL_KINDS,
        "databases": [{"engine": "postgresql", "versions": [major], "default_version": major}],
    }
    kube = await unreachable_cluster(api, owner, org)
    read = await api.get(f"/clusters/{kube['id']}", headers=owner.auth)
    capabilities = read.json()["capabilities"]
    assert capabilities["kinds"] == ALL_KINDS
    engines = {d["engine"]: d for d in capabilities["databases"]}
    assert set(engines) == {"postgresql", "mysql", "mongodb", "redis"}
    assert engines["postgresql"]["default_version"] == "17"


async def create(api: httpx.AsyncClient, owner: User, env: str, body: dict) -> httpx.Response:
    return await api.post(f"/environments/{env}/services", json=body, headers=owner.auth)


def refused(answer: httpx.Response, code: str) -> dict[str, Any]:
    assert answer.status_code == 422, answer.text
    error: dict[str, Any] = answer.json()["error"]
    assert error["code"] == code, error
    return error


async def test_the_local_cluster_refuses_what_it_cannot_run(api) -> None:
    owner, org, project = await owner_with_project(api)
    major = host_postgresql_major()
    other = "17" if major != "17" else "16"
    env = await environment(api, owner, project, (await local_cluster(api, owner, org))["id"], "l")

    helm = refused(await create(api, owner, env, HELM), "KIND_NOT_AVAILABLE")
    assert "cannot run helm services" in helm["message"]
    assert ", ".join(LOCAL_KINDS) in helm["message"]
    assert helm["details"]["available"] == LOCAL_KINDS

    db = {"name": "db", "kind": "database", "engine": "postgresql"}
    version = refused(
        await create(api, owner, env, {**db, "version": other}), "DATABASE_VERSION_NOT_AVAILABLE"
    )
    assert f"PostgreSQL {other}; available: {major}" in version["message"]
    assert (version["details"]["field"], version["details"]["available"]) == ("version", [major])
    engine = refused(
        await create(api, owner, env, {**db, "engine": "redis"}), "DATABASE_ENGINE_NOT_AVAILABLE"
    )
    assert f"available: PostgreSQL {major}" in engine["message"]

    # no version asked: the one the local runtime runs (not the newest the catalog knows)
    created = await create(api, owner, env, db)
    assert created.status_code == 201, created.text
    assert created.json()["version"] == major
    patched = await api.patch(
        f"/services/{created.json()['id']}", json={"version": "17"}, headers=owner.auth
    )
    if major != "17":
        refused(patched, "DATABASE_VERSION_NOT_AVAILABLE")
    services = await api.get(f"/environments/{env}/services", headers=owner.auth)
    assert [(s["name"], s["version"]) for s in services.json()["items"]] == [("db", major)]


async def test_a_kubernetes_cluster_runs_every_kind_and_clones_check_the_target(api) -> None:
    owner, org, project = await owner_with_project(api)
    kube = await unreachable_cluster(api, owner, org)
    env = await environment(api, owner, project, kube["id"], "k8s")
    assert (await create(api, owner, env, HELM)).status_code == 201
    postgres = await create(
        api, owner, env, {"name": "db", "kind": "database", "engine": "postgresql"}
    )
    assert (postgres.status_code, postgres.json()["version"]) == (201, "17")
    redis = await create(api, owner, env, {"name": "kv", "kind": "database", "engine": "redis"})
    assert (redis.status_code, redis.json()["version"]) == (201, "7")

    local = (await local_cluster(api, owner, org))["id"]
    onto_local = await api.post(
        f"/environments/{env}/clone",
        json={"name": "copy", "cluster_id": local},
        headers=owner.auth,
    )
    clone_error = refused(onto_local, "KIND_NOT_AVAILABLE")
    assert "the service 'cache'" in clone_error["message"]
    envs = await api.get(f"/projects/{project}/environments", headers=owner.auth)
    assert [e["name"] for e in envs.json()["items"]] == ["k8s"]  # nothing half-cloned
    same = await api.post(f"/environments/{env}/clone", json={"name": "copy"}, headers=owner.auth)
    assert same.status_code == 201, same.text


@pytest.mark.parametrize(("kind", "says"), [("managed", "not supported"), ("local", "built in")])
async def test_only_self_managed_clusters_can_be_registered(api, kind: str, says: str) -> None:
    owner, org, _ = await owner_with_project(api)
    answer = await api.post(
        f"/organizations/{org}/clusters", json={"name": "eks", "kind": kind}, headers=owner.auth
    )
    error = refused(answer, "CLUSTER_KIND_NOT_SUPPORTED")
    assert says in error["message"] and error["details"]["field"] == "kind"
    listed = await api.get(f"/organizations/{org}/clusters", headers=owner.auth)
    assert [c["kind"] for c in listed.json()["items"]] == ["local"]


async def test_another_tenants_cluster_is_not_found(api) -> None:
    owner, org, project = await owner_with_project(api)
    kube = await unreachable_cluster(api, owner, org)
    env = await environment(api, owner, project, kube["id"], "k8s")
    stranger = await sign_up(api, "Stranger")
    await create_org(api, stranger, "Other")
    for method, path in (
        ("GET", f"/clusters/{kube['id']}"),
        ("POST", f"/clusters/{kube['id']}/check"),
    ):
        answer = await api.request(method, path, headers=stranger.auth)
        assert answer.status_code == 404, (path, answer.text)
        assert "capabilities" not in answer.text
    answer = await create(api, stranger, env, HELM)
    assert answer.status_code == 404, answer.text
    # the owner's own check answers (the API server cannot be reached: a reason, not an error)
    check = await api.post(f"/clusters/{kube['id']}/check", headers=owner.auth)
    assert (check.status_code, check.json()["reason"]) == (200, "UNREACHABLE")


# --- against the devstack's kube-apiserver -------------------------------------------------


def devstack_file(devstack, key: str) -> Path:
    value = devstack.env.get(key)
    if not value:
        pytest.fail(f"{key} is not in .devstack/env: run `{KUBERNETES_SWITCH}=1 make infra-up`")
    return Path(value)


@pytest.mark.kubernetes  # skipped without the switch
async def test_the_check_reads_a_real_cluster(api, devstack) -> None:
    owner, org, _ = await owner_with_project(api)
    kubeconfig = devstack_file(devstack, "SLIPWAY_KUBERNETES_KUBECONFIG").read_text()
    cluster = await register(api, owner, org, {"name": "devstack", "kubeconfig": kubeconfig})
    check = await api.post(f"/clusters/{cluster['id']}/check", headers=owner.auth)
    assert check.status_code == 200, check.text
    body = check.json()
    assert body["ok"] is True, body
    assert body["kubernetes_version"].startswith("v1.")
    assert body["permissions"] == {"ok": True, "missing": []}
    assert body["nodes"]["ready"] >= 1
    assert all(n["ready"] for n in body["nodes"]["items"] if n["name"].startswith("kwok"))


@pytest.mark.kubernetes  # skipped without the switch
async def test_the_check_says_what_an_account_may_not_do(api, devstack) -> None:
    """An account granted nothing: the check names what it lacks; a wrong token is refused."""
    owner, org, _ = await owner_with_project(api)
    kubectl = str(devstack_file(devstack, "SLIPWAY_KUBECTL"))
    admin = devstack_file(devstack, "SLIPWAY_KUBERNETES_ADMIN_KUBECONFIG")
    config = yaml.safe_load(devstack_file(devstack, "SLIPWAY_KUBERNETES_KUBECONFIG").read_text())
    server = config["clusters"][0]["cluster"]
    account = f"nobody-{uuid.uuid4().hex[:8]}"

    def run(*args: str) -> str:
        done = subprocess.run(
            [kubectl, f"--kubeconfig={admin}", *args], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    run("create", "serviceaccount", account, "--namespace=default")
    try:
        token = run("create", "token", account, "--namespace=default", "--duration=10m")
        ca = base64.b64decode(server["certificate-authority-data"]).decode()
        cluster = await register(
            api,
            owner,
            org,
            {"name": account, "api_url": server["server"], "token": token, "ca_cert": ca},
        )
        body = (await api.post(f"/clusters/{cluster['id']}/check", headers=owner.auth)).json()
        assert (body["ok"], body["reason"]) == (False, "PERMISSIONS_MISSING"), body
        assert body["kubernetes_version"].startswith("v1.")
        assert body["nodes"] is None  # may not list them: said by the permissions
        assert {"create namespaces", "patch deployments.apps", "list nodes"} <= set(
            body["permissions"]["missing"]
        )
        assert "Slipway's account may not: " in body["message"]
        wrong = await register(
            api,
            owner,
            org,
            {"name": f"{account}-x", "api_url": server["server"], "token": "wrong", "ca_cert": ca},
        )
        denied = (await api.post(f"/clusters/{wrong['id']}/check", headers=owner.auth)).json()
        assert (denied["ok"], denied["reason"]) == (False, "UNAUTHORIZED"), denied
    finally:
        run("delete", "serviceaccount", account, "--namespace=default", "--ignore-not-found")
