"""Flaw 3 (SSRF through clusters and git) and the kubeconfig part of flaw 5, through the public API.

The platform allow-lists one target: a stub Kubernetes API server on 127.0.0.1 (``kube``). Every
other loopback, private, link-local or metadata address — the platform's own ports included — is
refused when a cluster is saved (422) and when it is checked (a stable reason, never the low-level
error); a git remote on one fails the build before git connects. The connection-time check is also
unit-tested with a resolver that changes its answer (libs/tests/unit/test_egress.py); here the
cluster saved while allowed is checked after the allow-list dropped it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import yaml

from slipway_libs.testing.certificates import self_signed
from slipway_libs.testing.platform import Platform
from slipway_libs.testing.platform import closed_port as closed_loopback_port
from slipway_libs.testing.public_api import User, create_org, sign_up
from tests.security.conftest import Listener

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

KUBE_TOKEN = "kube-token-0123456789"
CHECK_MESSAGES = {
    "UNREACHABLE": "The cluster's API server could not be reached.",
    "TLS_ERROR": "The TLS handshake with the API server failed: check its CA certificate.",
    "UNAUTHORIZED": "The API server refused the credentials.",
    "NOT_KUBERNETES": "The address answered, but not as a Kubernetes API server.",
    "TARGET_NOT_ALLOWED": "The API server's address is one the platform does not connect to "
    "(loopback, private, link-local or metadata): only the platform's operator can allow-list it.",
}


# --- a stub Kubernetes API server and a TCP listener ------------------------------------------


@dataclass
class Kube:
    port: int
    ca_pem: str
    connections: int = 0

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"


# What the stub answers an authenticated request, as a real API server would: the cluster
# check reads the version, lists the nodes and asks a SelfSubjectRulesReview; the token is a
# cluster admin's (every verb on every resource), so a reached stub is an ``ok`` cluster.
_STUB_VERSION = {"major": "1", "minor": "31", "gitVersion": "v1.31.2"}
_STUB_NODES = {
    "kind": "NodeList",
    "apiVersion": "v1",
    "metadata": {"resourceVersion": "1"},
    "items": [
        {
            "metadata": {"name": "node-1"},
            "status": {
                "conditions": [{"type": "Ready", "status": "True"}],
                "nodeInfo": {"kubeletVersion": "v1.31.2"},
            },
        }
    ],
}
_STUB_RULES = {
    "kind": "SelfSubjectRulesReview",
    "apiVersion": "authorization.k8s.io/v1",
    "status": {
        "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
        "nonResourceRules": [],
        "incomplete": False,
    },
}
_STUB_ROUTES: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {
    ("GET", "/version"): ("200 OK", _STUB_VERSION),
    ("GET", "/api/v1/nodes"): ("200 OK", _STUB_NODES),
    ("POST", "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews"): ("201 Created", _STUB_RULES),
}
_NOT_FOUND = ("404 Not Found", {"kind": "Status", "status": "Failure", "code": 404})
_UNAUTHORIZED = ("401 Unauthorized", {"kind": "Status", "status": "Failure", "code": 401})


async def _kube_answer(
    kube: Kube, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    kube.connections += 1
    try:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        lines = head.split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        fields = (line.lower().partition(": ") for line in lines[1:])
        headers = {name: value for name, _, value in fields}
        await reader.readexactly(int(headers.get("content-length", "0")))  # a review's body
    except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError, ValueError):
        writer.close()
        return
    if headers.get("authorization") == f"bearer {KUBE_TOKEN}".lower():
        status, answer = _STUB_ROUTES.get((method, target.split("?", 1)[0]), _NOT_FOUND)
    else:
        status, answer = _UNAUTHORIZED
    body = json.dumps(answer).encode()
    writer.write(
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    await writer.drain()
    writer.close()


@pytest.fixture(scope="module")
async def kube(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Kube]:
    certificate = self_signed("127.0.0.1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate.write(tmp_path_factory.mktemp("kube"), "kube"))
    stub = Kube(port=0, ca_pem=certificate.pem)
    server = await asyncio.start_server(  # port 0: the kernel's, never a port found free earlier
        lambda r, w: _kube_answer(stub, r, w), "127.0.0.1", 0, ssl=context
    )
    stub.port = server.sockets[0].getsockname()[1]
    async with server:
        yield stub


@pytest.fixture(scope="module")
def closed_port() -> Iterator[int]:
    with closed_loopback_port() as port:  # held: nothing listens there, nothing can
        yield port


@pytest.fixture(scope="module")
async def platform(platform_factory, kube: Kube, closed_port: int, tmp_path_factory) -> Platform:
    return await platform_factory(
        ["identity", "catalog", "builder", "deployer", "gateway"],
        extra_env={
            # the stub API server, and a closed port to tell "unreachable" from "not allowed"
            "SLIPWAY_EGRESS_ALLOW": f"127.0.0.1:{kube.port},127.0.0.1:{closed_port}",
            "SLIPWAY_GIT_LOCAL_ROOTS": str(tmp_path_factory.mktemp("repos")),
        },
    )


@pytest.fixture(scope="module")
async def owner_org(platform: Platform) -> tuple[User, str]:
    async with httpx.AsyncClient(base_url=f"{platform.url('gateway')}/api/v1", timeout=30) as api:
        owner = await sign_up(api, "Ops")
        return owner, await create_org(api, owner)


_counter = iter(range(1_000_000))


async def create_cluster(
    api: httpx.AsyncClient, owner_org: tuple[User, str], **body: Any
) -> httpx.Response:
    owner, org = owner_org
    return await api.post(
        f"/organizations/{org}/clusters",
        json={"name": f"k{next(_counter)}", **body},
        headers=owner.auth,
    )


async def check(api: httpx.AsyncClient, owner: User, cluster_id: str) -> dict[str, Any]:
    answer = await api.post(f"/clusters/{cluster_id}/check", headers=owner.auth)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    if not result["ok"]:
        # a stable reason with its fixed message: nothing low-level (open vs closed port, TLS)
        assert set(result) == {"ok", "kind", "reason", "message"}, result
        assert result["message"] == CHECK_MESSAGES[result["reason"]], result
    return result


# --- clusters: refused when saved -------------------------------------------------------------


def refused_urls(platform: Platform) -> Iterator[str]:
    catalog = platform.url("catalog").rsplit(":", 1)[1]  # an internal port of the platform
    yield from (
        f"https://127.0.0.1:{catalog}",
        f"https://127.1:{catalog}",
        f"https://0x7f.1:{catalog}",
        f"https://2130706433:{catalog}",
        f"https://localhost:{catalog}",
        f"https://LOCALHOST:{catalog}",
        f"https://[::1]:{catalog}",
        f"https://[::ffff:127.0.0.1]:{catalog}",
        f"https://[::ffff:7f00:1]:{catalog}",
        "https://169.254.169.254",
        "https://[fd00:ec2::254]",
        "https://[fe80::1]:6443",
        "https://10.0.0.1:6443",
        "https://172.16.5.4:6443",
        "https://192.168.1.10:6443",
        "https://100.64.0.1:6443",
        "https://[fc00::1]:6443",
        "https://0.0.0.0:6443",
        "https://0:6443",
        "https://[::]:6443",
        "https://224.0.0.1:6443",
        "https://240.0.0.1:6443",
    )


async def test_every_refused_address_form_is_a_422_when_saved(
    api: httpx.AsyncClient, platform: Platform, owner_org: tuple[User, str], listener: Listener
) -> None:
    for url in refused_urls(platform):
        made = await create_cluster(api, owner_org, api_url=url, token="t")
        assert made.status_code == 422, (url, made.text)
        assert made.json()["error"]["code"] == "TARGET_NOT_ALLOWED", (url, made.text)
        assert made.json()["error"]["details"] == {"field": "api_url"}
        # the same server through a kubeconfig
        config = kubeconfig(server=url)
        made = await create_cluster(api, owner_org, kubeconfig=config)
        assert made.status_code == 422, (url, made.text)
        assert made.json()["error"]["code"] == "TARGET_NOT_ALLOWED", (url, made.text)
    assert listener.accepted == []


async def test_the_api_url_is_https_host_port_and_nothing_else(
    api: httpx.AsyncClient, owner_org: tuple[User, str], kube: Kube
) -> None:
    for url in (
        f"{kube.url}/api",
        f"{kube.url}/?x=1",
        f"{kube.url}?",
        f"{kube.url}#frag",
        f"https://user:pw@127.0.0.1:{kube.port}",
        f"https://user@127.0.0.1:{kube.port}",
        "http://k8s.example.com:6443",  # plain http to a target the allow-list does not name
        "ftp://k8s.example.com",
        "https://k8s.example.com:99999",
    ):
        made = await create_cluster(api, owner_org, api_url=url, token="t")
        assert made.status_code == 422, (url, made.text)
        assert made.json()["error"]["code"] == "INVALID_API_URL", (url, made.text)


async def test_the_allow_listed_host_port_passes_and_another_port_of_it_does_not(
    api: httpx.AsyncClient, platform: Platform, owner_org: tuple[User, str], kube: Kube
) -> None:
    owner, _ = owner_org
    made = await create_cluster(
        api, owner_org, api_url=f"{kube.url}/", token=KUBE_TOKEN, ca_cert=kube.ca_pem
    )
    assert made.status_code == 201, made.text
    assert made.json()["api_url"] == kube.url
    assert await check(api, owner, made.json()["id"]) == {
        "ok": True,
        "kind": "self_managed",
        "kubernetes_version": "v1.31.2",
        "nodes": {
            "total": 1,
            "ready": 1,
            "items": [{"name": "node-1", "ready": True, "kubelet_version": "v1.31.2"}],
        },
        "permissions": {"ok": True, "missing": []},
    }
    for port in (kube.port + 1, kube.port - 1, 443):
        other = await create_cluster(api, owner_org, api_url=f"https://127.0.0.1:{port}", token="t")
        assert other.status_code == 422 and other.json()["error"]["code"] == "TARGET_NOT_ALLOWED"
        # nor can a saved cluster be moved there
        moved = await api.patch(
            f"/clusters/{made.json()['id']}",
            json={"api_url": f"https://127.0.0.1:{port}"},
            headers=owner.auth,
        )
        assert moved.status_code == 422 and moved.json()["error"]["code"] == "TARGET_NOT_ALLOWED"
    # plain http is accepted for an allow-listed target only
    plain = await create_cluster(api, owner_org, api_url=f"http://127.0.0.1:{kube.port}", token="t")
    assert plain.status_code == 201, plain.text


# --- clusters: the check answers a stable reason ----------------------------------------------


async def test_the_check_answers_stable_reasons_without_the_low_level_error(
    api: httpx.AsyncClient, owner_org: tuple[User, str], kube: Kube, closed_port: int
) -> None:
    owner, _ = owner_org
    cases = [
        ({"api_url": kube.url, "token": "wrong", "ca_cert": kube.ca_pem}, "UNAUTHORIZED"),
        ({"api_url": kube.url, "token": KUBE_TOKEN}, "TLS_ERROR"),  # the stub's CA not given
        ({"api_url": f"https://127.0.0.1:{closed_port}", "token": "t"}, "UNREACHABLE"),
        ({"api_url": "https://k8s.example.invalid", "token": "t"}, "UNREACHABLE"),
        ({"api_url": f"http://127.0.0.1:{kube.port}", "token": "t"}, "NOT_KUBERNETES"),
    ]
    for body, reason in cases:
        made = await create_cluster(api, owner_org, **body)
        assert made.status_code == 201, made.text
        result = await check(api, owner, made.json()["id"])
        assert result["ok"] is False and result["reason"] == reason, (body, result)


async def test_a_cluster_whose_address_became_refused_is_refused_at_check_time(
    api: httpx.AsyncClient, platform: Platform, owner_org: tuple[User, str], kube: Kube
) -> None:
    """Saved while its address was allowed; checked after the allow-list dropped it — as a name
    rebound to an internal address would be: the check is on the address at connection time."""
    owner, _ = owner_org
    made = await create_cluster(
        api, owner_org, api_url=kube.url, token=KUBE_TOKEN, ca_cert=kube.ca_pem
    )
    assert made.status_code == 201, made.text
    allowed = platform.env["SLIPWAY_EGRESS_ALLOW"]
    await restart_catalog(platform, egress_allow="")
    try:
        before = kube.connections
        result = await check(api, owner, made.json()["id"])
        assert result["reason"] == "TARGET_NOT_ALLOWED"
        assert kube.connections == before  # refused before connecting
    finally:
        await restart_catalog(platform, egress_allow=allowed)


async def restart_catalog(platform: Platform, *, egress_allow: str) -> None:
    platform.env["SLIPWAY_EGRESS_ALLOW"] = egress_allow
    platform.stop("catalog")
    platform.start("catalog")
    await platform.wait_ready("catalog")


# --- kubeconfigs: each malformed one is a 4xx -------------------------------------------------


def kubeconfig(
    server: Any = "https://k8s.example.com:6443", user: Any = None, **cluster: Any
) -> str:
    entry = {"server": server, **cluster} if server is not None else dict(cluster)
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "current-context": "c",
            "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
            "clusters": [{"name": "k", "cluster": entry}],
            "users": [{"name": "u", "user": user if user is not None else {"token": "abc"}}],
        }
    )


BAD_KUBECONFIGS = {
    "no server": (kubeconfig(server=None), "kubeconfig.clusters[0].cluster.server"),
    "a string user": (kubeconfig(user="admin"), "kubeconfig.users[0].user"),
    "bad base64 CA": (
        kubeconfig(**{"certificate-authority-data": "not base64!"}),
        "kubeconfig.clusters[0].cluster.certificate-authority-data",
    ),
    "non-UTF-8 CA": (
        kubeconfig(**{"certificate-authority-data": base64.b64encode(b"\xff\xfe\xfd").decode()}),
        "kubeconfig.clusters[0].cluster.certificate-authority-data",
    ),
    "insecure as a string": (
        kubeconfig(**{"insecure-skip-tls-verify": "false"}),
        "kubeconfig.clusters[0].cluster.insecure-skip-tls-verify",
    ),
    "a server with a path": (
        kubeconfig(server="https://k8s.example.com/api?x"),
        "kubeconfig.clusters[0].cluster.server",
    ),
    "not YAML": ("clusters: [", "kubeconfig.document"),
    "deeply nested": ("[" * 3000 + "]" * 3000, "kubeconfig.document"),
}


@pytest.mark.parametrize("case", BAD_KUBECONFIGS)
async def test_each_malformed_kubeconfig_is_a_422_naming_its_field(
    api: httpx.AsyncClient, owner_org: tuple[User, str], case: str
) -> None:
    config, field_name = BAD_KUBECONFIGS[case]
    made = await create_cluster(api, owner_org, kubeconfig=config)
    assert made.status_code == 422, made.text
    assert made.json()["error"]["code"] == "INVALID_KUBECONFIG"
    assert made.json()["error"]["details"] == {"field": field_name}
    # and when a cluster is edited
    owner, _ = owner_org
    good = await create_cluster(api, owner_org, kubeconfig=kubeconfig())
    assert good.status_code == 201, good.text
    patched = await api.patch(
        f"/clusters/{good.json()['id']}", json={"kubeconfig": config}, headers=owner.auth
    )
    assert patched.status_code == 422 and patched.json()["error"]["code"] == "INVALID_KUBECONFIG"


async def test_a_kubeconfig_insecure_flag_must_be_a_real_boolean(
    api: httpx.AsyncClient, owner_org: tuple[User, str], kube: Kube
) -> None:
    """``insecure-skip-tls-verify: false`` (a boolean) keeps verification on: the stub's
    self-signed certificate fails the check; ``true`` skips it."""
    owner, _ = owner_org
    for insecure, expected in ((False, "TLS_ERROR"), (True, None)):
        config = kubeconfig(
            server=kube.url, user={"token": KUBE_TOKEN}, **{"insecure-skip-tls-verify": insecure}
        )
        made = await create_cluster(api, owner_org, kubeconfig=config)
        assert made.status_code == 201, made.text
        result = await check(api, owner, made.json()["id"])
        assert result.get("reason") == expected, result
        assert result["ok"] is (expected is None), result  # reached: the stub's cluster is ok


# --- git: refused before git connects ---------------------------------------------------------


async def test_a_git_remote_on_an_internal_port_fails_the_build_and_connects_nowhere(
    api: httpx.AsyncClient, platform: Platform, listener: Listener
) -> None:
    owner = await sign_up(api, "Dev")
    org = await create_org(api, owner)
    clusters = (await api.get(f"/organizations/{org}/clusters", headers=owner.auth)).json()
    project = await api.post(
        f"/organizations/{org}/projects", json={"name": "Shop"}, headers=owner.auth
    )
    env = await api.post(
        f"/projects/{project.json()['id']}/environments",
        headers=owner.auth,
        json={"name": "staging", "mode": "staging", "cluster_id": clusters["items"][0]["id"]},
    )
    assert env.status_code == 201, env.text
    env_id = env.json()["id"]
    service = await api.post(
        f"/environments/{env_id}/services",
        headers=owner.auth,
        json={
            "name": "web",
            "kind": "application",
            "git": {"url": f"https://127.0.0.1:{listener.port}/org/repo.git"},
            "ports": [{"port": 8080}],
        },
    )
    assert service.status_code == 201, service.text
    done = await deploy_and_settle(api, owner, env_id)

    assert done["status"] == "ERROR" and done["reason"] == "BUILD_FAILED", done
    message = done["stages"][0]["services"][0]["message"]
    assert "not connect to" in message and "allow-lists" in message, message
    assert listener.accepted == []


async def deploy_and_settle(api: httpx.AsyncClient, owner: User, env_id: str) -> dict[str, Any]:
    for _ in range(300):  # until the deployer learned the service from the catalog's events
        status = await api.get(f"/environments/{env_id}/status", headers=owner.auth)
        if status.status_code == 200 and status.json()["services"]:
            break
        await asyncio.sleep(0.1)
    deploy = await api.post(f"/environments/{env_id}/deploy", headers=owner.auth)
    assert deploy.status_code == 202, deploy.text
    for _ in range(600):
        answer = await api.get(f"/deployments/{deploy.json()['request_id']}", headers=owner.auth)
        assert answer.status_code == 200, answer.text
        if answer.json()["status"] in ("SUCCESS", "ERROR", "CANCELED"):
            return dict(answer.json())
        await asyncio.sleep(0.5)
    raise AssertionError("the deployment never ended")
