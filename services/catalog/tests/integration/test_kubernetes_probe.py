"""The cluster probe against the devstack's real kube-apiserver (``SLIPWAY_DEVSTACK_KUBERNETES=1``):
how the catalog reads the account's rules (SelfSubjectRulesReview, matched by our RBAC rules)
agrees, need by need, with what the API server's own authorizer answers
(SelfSubjectAccessReview) — for the devstack's deployer account and for an account with no
grant beyond every authenticated user's."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from slipway_catalog.adapters import KubernetesProbe
from slipway_catalog.domain import cluster_check
from slipway_catalog.domain.cluster_check import REQUIRED, Need
from slipway_catalog.domain.clusters import CheckReason, ClusterCheckFailed
from slipway_catalog.domain.kubeconfig import ClusterAccess, parse_kubeconfig
from slipway_libs.egress import EgressPolicy
from slipway_libs.testing.plugin import KUBERNETES_SWITCH as SWITCH

pytestmark = [pytest.mark.integration, pytest.mark.kubernetes]  # skipped without the switch


def devstack_path(devstack, key: str) -> Path:
    value = devstack.env.get(key)
    if not value:
        pytest.fail(f"{key} is not in .devstack/env: run `{SWITCH}=1 make infra-up`")
    return Path(value)


@pytest.fixture
def deployer(devstack) -> ClusterAccess:
    return parse_kubeconfig(devstack_path(devstack, "SLIPWAY_KUBERNETES_KUBECONFIG").read_text())


@pytest.fixture
def probe(deployer: ClusterAccess) -> KubernetesProbe:
    server = f"{deployer.server.host}:{deployer.server.port}"  # loopback: allow-listed exactly
    return KubernetesProbe(10.0, EgressPolicy.from_setting(server))


@pytest.fixture
def nobody(devstack, deployer: ClusterAccess):
    """A fresh ServiceAccount bound to nothing, and a short-lived token of it."""
    kubectl = str(devstack_path(devstack, "SLIPWAY_KUBECTL"))
    admin = devstack_path(devstack, "SLIPWAY_KUBERNETES_ADMIN_KUBECONFIG")
    name = f"nobody-{uuid.uuid4().hex[:8]}"

    def run(*args: str) -> str:
        done = subprocess.run(
            [kubectl, f"--kubeconfig={admin}", "--namespace=default", *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    run("create", "serviceaccount", name)
    try:
        token = run("create", "token", name, "--duration=10m")
        yield ClusterAccess(deployer.server, token=token, ca_pem=deployer.ca_pem)
    finally:
        run("delete", "serviceaccount", name, "--ignore-not-found")


async def rules_agree_with_access_reviews(
    probe: KubernetesProbe, access: ClusterAccess
) -> set[Need]:
    facts = await probe.facts(access)
    assert facts.version.startswith("v1.") and not facts.rules_incomplete  # RBAC lists all
    by_rules = set(cluster_check.not_granted(facts.rules))
    answers = await probe.allowed(access, REQUIRED)
    by_reviews = {need for need, allowed in zip(REQUIRED, answers, strict=True) if not allowed}
    assert by_rules == by_reviews
    return by_rules


async def test_the_deployer_account_may_do_everything_slipway_needs(probe, deployer) -> None:
    assert await rules_agree_with_access_reviews(probe, deployer) == set()
    facts = await probe.facts(deployer)
    assert facts.nodes is not None and any(node.ready for node in facts.nodes)
    # and nothing beyond: RBAC itself is out of its reach
    clusterroles = Need("rbac.authorization.k8s.io", "clusterroles", "create", namespaced=False)
    assert await probe.allowed(deployer, [clusterroles]) == [False]


async def test_an_account_granted_nothing_lacks_every_need(probe, nobody) -> None:
    assert await rules_agree_with_access_reviews(probe, nobody) == set(REQUIRED)
    assert (await probe.facts(nobody)).nodes is None  # listing nodes is refused, not an error


async def test_the_probe_reaches_only_an_allow_listed_api_server(deployer) -> None:
    closed = KubernetesProbe(5.0, EgressPolicy.from_setting(""))
    with pytest.raises(ClusterCheckFailed) as refused:
        await closed.facts(deployer)
    assert refused.value.reason is CheckReason.TARGET_NOT_ALLOWED
    assert urlsplit(deployer.server.url).hostname == "127.0.0.1"
