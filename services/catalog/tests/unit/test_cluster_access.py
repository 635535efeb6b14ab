"""A cluster's API server URL and kubeconfig, read strictly: each malformed input is a 422 with a
stable code and the field at fault, never a 500 nor a lenient reading."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import yaml

from slipway_catalog.domain.clusters import ClusterIn, ClusterPatch, access
from slipway_catalog.domain.kubeconfig import api_server, parse_kubeconfig
from slipway_libs.errors import InvalidInput
from slipway_libs.testing.certificates import self_signed

CA = self_signed("k8s.example.com").pem  # the CA of the API server the kubeconfigs name


def kubeconfig(
    cluster: dict[str, Any] | None = None, user: Any = None, **top: Any
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "prod",
        "contexts": [{"name": "prod", "context": {"cluster": "c", "user": "u"}}],
        "clusters": [
            {
                "name": "c",
                "cluster": cluster
                if cluster is not None
                else {
                    "server": "https://k8s.example.com:6443",
                    "certificate-authority-data": base64.b64encode(CA.encode()).decode(),
                },
            }
        ],
        "users": [{"name": "u", "user": user if user is not None else {"token": "abc.def"}}],
    }
    doc.update(top)
    return doc


def refusal(doc: Any) -> InvalidInput:
    text = doc if isinstance(doc, str) else yaml.safe_dump(doc)
    with pytest.raises(InvalidInput) as caught:
        parse_kubeconfig(text)
    assert caught.value.status_code == 422
    return caught.value


def test_a_good_kubeconfig_gives_server_ca_and_token() -> None:
    got = parse_kubeconfig(yaml.safe_dump(kubeconfig()))
    assert got.server.url == "https://k8s.example.com:6443"
    assert got.ca_pem == CA and got.token == "abc.def" and got.insecure is False
    wrapped = base64.encodebytes(CA.encode()).decode()  # line breaks every 76 characters
    cluster = {"server": "https://k8s.example.com", "certificate-authority-data": wrapped}
    assert parse_kubeconfig(yaml.safe_dump(kubeconfig(cluster))).ca_pem == CA
    insecure = kubeconfig({"server": "https://k8s.example.com", "insecure-skip-tls-verify": True})
    assert parse_kubeconfig(yaml.safe_dump(insecure)).insecure is True


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        (
            kubeconfig({"certificate-authority-data": "eA=="}),
            "kubeconfig.clusters[0].cluster.server",
        ),
        (kubeconfig({"server": 42}), "kubeconfig.clusters[0].cluster.server"),
        (kubeconfig(user="just-a-string"), "kubeconfig.users[0].user"),
        (kubeconfig(user={"token": 7}), "kubeconfig.users[0].user.token"),
        (kubeconfig(user={"token": "a b"}), "kubeconfig.users[0].user.token"),
        (
            kubeconfig({"server": "https://k.example", "certificate-authority-data": "%%not b64"}),
            "kubeconfig.clusters[0].cluster.certificate-authority-data",
        ),
        (
            kubeconfig(
                {
                    "server": "https://k.example",
                    "certificate-authority-data": base64.b64encode(b"\xff\xfe\x00bad").decode(),
                }
            ),
            "kubeconfig.clusters[0].cluster.certificate-authority-data",
        ),
        (
            kubeconfig(
                {
                    "server": "https://k.example",
                    "certificate-authority-data": base64.b64encode(b"not a PEM").decode(),
                }
            ),
            "kubeconfig.clusters[0].cluster.certificate-authority-data",
        ),
        (
            kubeconfig({"server": "https://k.example", "insecure-skip-tls-verify": "false"}),
            "kubeconfig.clusters[0].cluster.insecure-skip-tls-verify",
        ),
        (
            kubeconfig({"server": "https://k.example", "insecure-skip-tls-verify": 1}),
            "kubeconfig.clusters[0].cluster.insecure-skip-tls-verify",
        ),
        (kubeconfig({"server": "https://u:p@k.example"}), "kubeconfig.clusters[0].cluster.server"),
        (
            kubeconfig({"server": "https://k.example/api?x=1"}),
            "kubeconfig.clusters[0].cluster.server",
        ),
        (kubeconfig({"server": "ftp://k.example"}), "kubeconfig.clusters[0].cluster.server"),
        (kubeconfig(**{"current-context": "other"}), "kubeconfig.contexts"),
        (kubeconfig(**{"current-context": None}), "kubeconfig.current-context"),
        (kubeconfig(contexts="prod"), "kubeconfig.contexts"),
        (kubeconfig(clusters=[{"name": "c", "cluster": "x"}]), "kubeconfig.clusters[0].cluster"),
        (kubeconfig(users={"u": {}}), "kubeconfig.users"),
        ("- a list\n- not a mapping\n", "kubeconfig.document"),
        ("key: [unclosed", "kubeconfig.document"),
        ("a: \x00", "kubeconfig.document"),
        ("[" * 5000 + "]" * 5000, "kubeconfig.document"),
    ],
)
def test_each_malformed_kubeconfig_is_a_422_naming_its_field(doc: Any, field: str) -> None:
    refused = refusal(doc)
    assert refused.code == "INVALID_KUBECONFIG"
    assert refused.details == {"field": field}


def test_a_kubeconfig_without_a_user_has_no_token() -> None:
    doc = kubeconfig()
    doc["contexts"][0]["context"].pop("user")
    assert parse_kubeconfig(yaml.safe_dump(doc)).token is None


@pytest.mark.parametrize(
    "url",
    [
        "http://k.example",
        "https://k.example:6443",
        "https://k.example/",
        "https://[2001:db8::1]:6443",
        "https://K.Example.:443",
    ],
)
def test_api_urls_of_the_accepted_shape(url: str) -> None:
    server = api_server(url)
    assert server.url.startswith(("http://", "https://")) and not server.url.endswith("/")
    assert server.host == server.host.lower() and not server.host.endswith(".")


@pytest.mark.parametrize(
    "url",
    [
        "https://u:p@k.example",
        "https://u@k.example",
        "https://k.example/api",
        "https://k.example/?q",
        "https://k.example?",
        "https://k.example#frag",
        "https://k.example/#",
        "https://k.example:99999",
        "https://k.example:port",
        "https://",
        "ftp://k.example",
        "k.example:6443",
        "https://k.example\\@127.0.0.1",
        "https://%31%32%37.0.0.1",
        "https://[fe80::1%25eth0]",
        "https://k.example /",
        "https://k.example\x00",
    ],
)
def test_api_urls_of_any_other_shape_are_refused(url: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        api_server(url)
    assert caught.value.code == "INVALID_API_URL"
    assert caught.value.details == {"field": "api_url"}


def test_the_ca_cert_and_token_given_directly_are_checked() -> None:
    good = ClusterIn(name="k", api_url="https://k.example", token="t0k", ca_cert=CA)
    assert good.access().ca_pem == CA
    bad_ca = ClusterIn(name="k", api_url="https://k.example", token="t0k", ca_cert="nope")
    with pytest.raises(InvalidInput) as caught:
        bad_ca.access()
    assert caught.value.code == "INVALID_CA_CERT"
    bad_token = ClusterIn(name="k", api_url="https://k.example", token="t\n0k")
    with pytest.raises(InvalidInput) as caught:
        bad_token.access()
    assert caught.value.code == "INVALID_CLUSTER_TOKEN"


def test_a_patch_that_leaves_no_access_is_a_422_not_a_500() -> None:
    current = {"token": None, "ca_cert": None, "kubeconfig": "x"}
    with pytest.raises(InvalidInput) as caught:
        ClusterPatch(kubeconfig=None).apply(current, name="k", api_url="https://k.example")
    assert caught.value.code == "CLUSTER_ACCESS_MISSING"
    patched = ClusterPatch(token="new").apply(current, name="k", api_url="https://k.example")
    assert access(patched.credentials(), api_url=patched.api_url).token == "new"
