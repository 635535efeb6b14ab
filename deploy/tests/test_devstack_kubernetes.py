"""The devstack's Kubernetes API (``SLIPWAY_DEVSTACK_KUBERNETES=1 make infra-up``): a real
kube-apiserver with token authentication and RBAC, a scheduler, a controller manager and a kwok
fake node, reached through the kubeconfigs the devstack writes under ``.devstack/kubernetes/``.

Skipped unless the switch is on in the test run's environment too (``make test`` will turn it
on once the from-source build is proven on a clean machine).
"""

from __future__ import annotations

import base64
import json
import secrets
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from slipway_libs.testing.plugin import KUBERNETES_SWITCH as SWITCH
from slipway_libs.testing.plugin import Devstack

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "devstack"))

from slipway_devstack.kubernetes import AUDIT_LOG, slipway_user

pytestmark = [pytest.mark.integration, pytest.mark.kubernetes]  # skipped without the switch

READY_DEADLINE = 120.0  # seconds; kwok makes pods Ready in about a second


class Kubeconfig:
    """The server, CA and bearer token of a kubeconfig the devstack wrote (one cluster, one
    user, as it writes them)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        config = yaml.safe_load(path.read_text())
        cluster = config["clusters"][0]["cluster"]
        self.server: str = cluster["server"]
        self.ca_pem: bytes = base64.b64decode(cluster["certificate-authority-data"])
        self.token: str = config["users"][0]["user"]["token"]

    def client(self, token: str | None = None) -> httpx.Client:
        """An HTTPS client that verifies the API server against the kubeconfig's CA."""
        ctx = ssl.create_default_context(cadata=self.ca_pem.decode())
        headers = {"Authorization": f"Bearer {token if token is not None else self.token}"}
        return httpx.Client(base_url=self.server, verify=ctx, headers=headers, timeout=10.0)


def _env(devstack: Devstack, key: str) -> str:
    value = devstack.env.get(key)
    if not value:
        pytest.fail(
            f"{key} is not in .devstack/env: run `{SWITCH}=1 make infra-up` (it builds and starts "
            "the devstack's Kubernetes)"
        )
    return value


@pytest.fixture(scope="module")
def slipway(devstack: Devstack) -> Kubeconfig:
    return Kubeconfig(Path(_env(devstack, "SLIPWAY_KUBERNETES_KUBECONFIG")))


@pytest.fixture(scope="module")
def admin(devstack: Devstack) -> Kubeconfig:
    return Kubeconfig(Path(_env(devstack, "SLIPWAY_KUBERNETES_ADMIN_KUBECONFIG")))


@pytest.fixture(scope="module")
def kubectl(devstack: Devstack, slipway: Kubeconfig) -> Any:
    """kubectl as Slipway's service account; returns its stdout, fails the test on error."""
    binary = _env(devstack, "SLIPWAY_KUBECTL")

    def run(*args: str, stdin: str | None = None) -> str:
        cmd = [binary, f"--kubeconfig={slipway.path}", *args]
        res = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, f"{' '.join(cmd)} failed: {res.stderr.strip()}"
        return res.stdout

    return run


@pytest.fixture
def namespace(kubectl: Any) -> Iterator[str]:
    name = f"devstack-test-{secrets.token_hex(4)}"
    yield name
    # deletion takes the namespace controller several seconds: not waited for
    kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=false")


def test_the_api_answers_version_to_slipways_token(slipway: Kubeconfig) -> None:
    with slipway.client() as client:
        resp = client.get("/version")
    assert resp.status_code == 200, resp.text
    version = resp.json()
    assert version["major"] == "1" and version["gitVersion"].startswith("v1."), version


def test_an_unknown_token_is_refused(slipway: Kubeconfig) -> None:
    with slipway.client(token=secrets.token_hex(24)) as client:
        resp = client.get("/api/v1/namespaces")
    assert resp.status_code == 401, resp.text
    assert resp.json()["reason"] == "Unauthorized"


def test_rbac_confines_slipways_account_to_what_a_deployer_needs(
    slipway: Kubeconfig, admin: Kubeconfig
) -> None:
    cluster_roles = "/apis/rbac.authorization.k8s.io/v1/clusterroles"
    with slipway.client() as client:
        allowed = client.get("/api/v1/namespaces")
        refused = client.get(cluster_roles)
    assert allowed.status_code == 200, allowed.text
    assert refused.status_code == 403, refused.text
    assert refused.json()["reason"] == "Forbidden"
    with admin.client() as client:  # the admin is not confined: the refusal is RBAC's
        assert client.get(cluster_roles).status_code == 200


def _deployment(namespace: str, replicas: int) -> dict[str, Any]:
    labels = {"app": "web"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {"name": "web", "image": "busybox", "ports": [{"containerPort": 8080}]}
                    ]
                },
            },
        },
    }


def _ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def test_a_deployment_applied_as_slipway_gets_ready_pods_on_the_kwok_node(
    kubectl: Any, namespace: str
) -> None:
    kwok_nodes = json.loads(kubectl("get", "nodes", "-l", "type=kwok", "-o", "json"))["items"]
    assert kwok_nodes, "the devstack created no kwok node"
    node_names = {n["metadata"]["name"] for n in kwok_nodes}

    kubectl("create", "namespace", namespace)
    with tempfile.NamedTemporaryFile("w", suffix=".json") as manifest:
        json.dump(_deployment(namespace, replicas=2), manifest)
        manifest.flush()
        kubectl("apply", "-f", manifest.name)

    deadline = time.monotonic() + READY_DEADLINE
    pods: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        pods = json.loads(kubectl("-n", namespace, "get", "pods", "-o", "json"))["items"]
        placed = [p for p in pods if p["spec"].get("nodeName") in node_names and _ready(p)]
        if len(placed) == 2:
            break
        time.sleep(0.5)
    else:
        seen = [(p["metadata"]["name"], p["spec"].get("nodeName"), _ready(p)) for p in pods]
        pytest.fail(
            f"2 Ready pods on {node_names} not seen within {READY_DEADLINE:.0f}s; "
            f"pods (name, node, ready): {seen}"
        )
    status = json.loads(kubectl("-n", namespace, "get", "deployment", "web", "-o", "json"))
    deadline = time.monotonic() + READY_DEADLINE
    while status["status"].get("availableReplicas") != 2:
        assert time.monotonic() < deadline, f"deployment not available: {status['status']}"
        time.sleep(0.5)
        status = json.loads(kubectl("-n", namespace, "get", "deployment", "web", "-o", "json"))


def test_the_audit_log_records_slipways_requests_and_only_those(
    slipway: Kubeconfig, admin: Kubeconfig
) -> None:
    """bench/kubernetes.py counts Slipway's API requests in the API server's audit log: the
    account's requests are there (Metadata: verb, resource, name), the admin's are not."""
    ours, theirs = f"audit-slipway-{secrets.token_hex(4)}", f"audit-admin-{secrets.token_hex(4)}"
    with admin.client() as client:
        assert client.get(f"/api/v1/namespaces/{theirs}").status_code == 404
    with slipway.client() as client:
        assert client.get(f"/api/v1/namespaces/{ours}").status_code == 404
    deadline = time.monotonic() + READY_DEADLINE
    mine: list[dict[str, Any]] = []
    while not mine:
        assert time.monotonic() < deadline, f"no audit line for namespace {ours} in {AUDIT_LOG}"
        time.sleep(0.2)
        lines = [json.loads(line) for line in AUDIT_LOG.read_text().splitlines() if line]
        mine = [e for e in lines if e.get("objectRef", {}).get("name") == ours]
    [entry] = mine  # one line a request: RequestReceived is not recorded
    assert entry["user"]["username"] == slipway_user()
    assert (entry["verb"], entry["objectRef"]["resource"]) == ("get", "namespaces")
    assert "requestObject" not in entry and "responseObject" not in entry  # Metadata level
    assert not [e for e in lines if e.get("objectRef", {}).get("name") == theirs]
    assert {e["user"]["username"] for e in lines} == {slipway_user()}
