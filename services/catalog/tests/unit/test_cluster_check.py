"""The cluster check's rules (what an RBAC rule grants), its answer, the mapping of the API
server's JSON, and the use case's fallback to access reviews when the rules are incomplete.

The mapping is checked on API server answers as Kubernetes documents them; the same requests
against a real kube-apiserver are in tests/integration/test_kubernetes_probe.py and
tests/e2e/test_clusters.py (the devstack Kubernetes switch)."""

from __future__ import annotations

import datetime
import json
import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import httpx
import pytest

from services.catalog.tests.documented import as_sent, undocumented
from slipway_catalog.adapters import kubernetes as adapter
from slipway_catalog.api.answers import ClusterCheckOut
from slipway_catalog.domain import cluster_check
from slipway_catalog.domain.cluster_check import REQUIRED, Facts, Need, Node, Rule
from slipway_catalog.domain.clusters import (
    CheckReason,
    Cluster,
    ClusterCheckFailed,
)
from slipway_catalog.domain.kubeconfig import ClusterAccess
from slipway_catalog.usecases import clusters
from slipway_catalog.usecases.deps import Deps
from slipway_libs.crypto import Sealer, new_key_setting

EVERYTHING = Rule(("*",), ("*",), ("*",))


def test_rbac_rule_matching() -> None:
    deployments = Need("apps", "deployments", "patch")
    assert EVERYTHING.grants(deployments)
    assert Rule(("apps",), ("deployments",), ("patch", "get")).grants(deployments)
    assert not Rule(("",), ("deployments",), ("patch",)).grants(deployments)  # wrong group
    assert not Rule(("apps",), ("statefulsets",), ("*",)).grants(deployments)
    assert not Rule(("apps",), ("deployments",), ("get",)).grants(deployments)
    # limited to named objects: cannot create the ones a deployment makes
    assert not Rule(("apps",), ("deployments",), ("*",), ("web",)).grants(deployments)
    scale = Need("apps", "deployments/scale", "patch")
    assert Rule(("apps",), ("*/scale",), ("patch",)).grants(scale)
    assert not Rule(("apps",), ("deployments",), ("patch",)).grants(scale)  # not a subresource
    assert not Rule(("",), ("pods",), ("get",)).grants(Need("", "pods/log", "get"))


def test_the_devstack_role_grants_everything_slipway_needs() -> None:
    """The rules a user is told to grant (the devstack's ClusterRole, as the API server lists
    them) cover every need; one verb less is reported."""
    devstack = [
        Rule(
            ("",), ("namespaces",), ("get", "list", "watch", "create", "update", "patch", "delete")
        ),
        Rule(
            ("",),
            ("services", "secrets", "configmaps", "persistentvolumeclaims", "serviceaccounts"),
            ("get", "list", "watch", "create", "update", "patch", "delete"),
        ),
        Rule(
            ("apps",),
            ("deployments", "deployments/scale", "statefulsets", "statefulsets/scale"),
            ("get", "list", "watch", "create", "update", "patch", "delete"),
        ),
        Rule(("apps",), ("replicasets", "controllerrevisions"), ("get", "list", "watch")),
        Rule(("batch",), ("jobs", "cronjobs"), ("*",)),
        Rule(("networking.k8s.io",), ("ingresses",), ("*",)),
        Rule(("networking.k8s.io",), ("ingressclasses",), ("get", "list", "watch")),
        Rule(("",), ("pods",), ("get", "list", "watch", "delete")),
        Rule(("",), ("pods/log",), ("get",)),
        Rule(("", "events.k8s.io"), ("events",), ("get", "list", "watch")),
        Rule(("",), ("nodes",), ("get", "list", "watch")),
    ]
    assert cluster_check.not_granted(devstack) == []
    without_delete = [
        *devstack[1:],
        Rule(("",), ("namespaces",), ("get", "list", "watch", "create", "patch")),
    ]
    assert [str(n) for n in cluster_check.not_granted(without_delete)] == ["delete namespaces"]
    assert len(cluster_check.not_granted([])) == len(REQUIRED)


def facts(**kw: Any) -> Facts:
    values: dict[str, Any] = {
        "version": "v1.35.4",
        "nodes": (Node("node-1", True, "v1.35.4"),),
        "more_nodes": 0,
        "rules": (EVERYTHING,),
        "rules_incomplete": False,
    }
    return Facts(**{**values, **kw})


def test_the_answer_of_a_cluster_slipway_can_use() -> None:
    assert cluster_check.answer(facts(), []) == {
        "ok": True,
        "kind": "self_managed",
        "kubernetes_version": "v1.35.4",
        "nodes": {
            "total": 1,
            "ready": 1,
            "items": [{"name": "node-1", "ready": True, "kubelet_version": "v1.35.4"}],
        },
        "permissions": {"ok": True, "missing": []},
    }


def test_the_answer_names_what_is_missing() -> None:
    missing = [
        Need("", "namespaces", "create", namespaced=False),
        Need("apps", "deployments", "patch"),
    ]
    body = cluster_check.answer(facts(nodes=None), missing)
    assert body["ok"] is False and body["nodes"] is None
    assert body["permissions"] == {
        "ok": False,
        "missing": ["create namespaces", "patch deployments.apps"],
    }
    assert body["reason"] == "PERMISSIONS_MISSING"
    assert body["message"].startswith(
        "Slipway's account may not: create namespaces, patch deployments.apps."
    )


def test_no_ready_node_is_a_reason_too() -> None:
    body = cluster_check.answer(facts(nodes=(Node("n", False),)), [])
    assert (body["ok"], body["reason"]) == (False, "NO_READY_NODES")
    assert "no Ready node" in body["message"]
    # a bounded list with more nodes beyond it: not known to have none
    assert cluster_check.answer(facts(nodes=(Node("n", False),), more_nodes=3), [])["ok"]


def response(status: int, body: Any) -> httpx.Response:
    return httpx.Response(status, content=json.dumps(body).encode())


def test_nodes_read_from_a_node_list() -> None:
    listed = {
        "kind": "NodeList",
        "metadata": {"remainingItemCount": 4},
        "items": [
            {
                "metadata": {"name": "kwok-node-0"},
                "status": {
                    "conditions": [
                        {"type": "MemoryPressure", "status": "False"},
                        {"type": "Ready", "status": "True"},
                    ],
                    "nodeInfo": {"kubeletVersion": "v1.35.4"},
                },
            },
            {
                "metadata": {"name": "down"},
                "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]},
            },
        ],
    }
    nodes, more = adapter._nodes(response(200, listed))
    assert nodes == (Node("kwok-node-0", True, "v1.35.4"), Node("down", False, None))
    assert more == 4
    assert adapter._nodes(response(403, {"kind": "Status", "reason": "Forbidden"})) == (None, 0)
    with pytest.raises(ClusterCheckFailed) as failed:
        adapter._nodes(response(401, {"kind": "Status"}))
    assert failed.value.reason is CheckReason.UNAUTHORIZED
    with pytest.raises(ClusterCheckFailed) as failed:
        adapter._nodes(httpx.Response(200, content=b"<html>"))
    assert failed.value.reason is CheckReason.NOT_KUBERNETES


def test_rules_read_from_a_rules_review() -> None:
    review = {
        "kind": "SelfSubjectRulesReview",
        "status": {
            "resourceRules": [
                {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]},
                {
                    "verbs": ["create"],
                    "apiGroups": ["authorization.k8s.io"],
                    "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                },
                {
                    "verbs": ["get"],
                    "apiGroups": [""],
                    "resources": ["secrets"],
                    "resourceNames": ["one"],
                },
            ],
            "nonResourceRules": [{"verbs": ["get"], "nonResourceURLs": ["/version"]}],
            "incomplete": False,
        },
    }
    rules, incomplete = adapter._rules(response(201, review))
    assert rules[0] == Rule(("",), ("pods",), ("get",))
    assert rules[2].resource_names == ("one",) and incomplete is False
    webhook = {"status": {"resourceRules": [], "incomplete": True}}
    assert adapter._rules(response(201, webhook)) == ((), True)
    errored = {"status": {"resourceRules": [], "evaluationError": "webhook unavailable"}}
    assert adapter._rules(response(201, errored))[1] is True
    assert adapter._rules(response(403, {"kind": "Status"})) == ((), True)


def test_an_access_review_per_need() -> None:
    body = adapter._access_review(Need("apps", "deployments/scale", "patch"))
    assert body["kind"] == "SelfSubjectAccessReview"
    assert body["spec"]["resourceAttributes"] == {
        "group": "apps",
        "resource": "deployments",
        "subresource": "scale",
        "verb": "patch",
        "namespace": cluster_check.CHECK_NAMESPACE,
    }
    cluster_wide = adapter._access_review(Need("", "namespaces", "create", namespaced=False))
    assert "namespace" not in cluster_wide["spec"]["resourceAttributes"]
    assert adapter._allowed(response(201, {"status": {"allowed": True}})) is True
    assert adapter._allowed(response(201, {"status": {"allowed": False, "reason": "no"}})) is False
    assert adapter._allowed(response(403, {})) is False


class FakeProbe:
    """Answers as an API server whose authorizer lists no rules (incomplete) and allows
    everything but what ``denied`` names, by access review."""

    def __init__(self, denied: set[Need], *, fails: CheckReason | None = None) -> None:
        self.denied, self.fails = denied, fails
        self.asked: list[Need] = []

    async def facts(self, access: ClusterAccess) -> Facts:
        if self.fails:
            raise ClusterCheckFailed(self.fails, "low-level detail")
        return facts(rules=(), rules_incomplete=True)

    async def allowed(self, access: ClusterAccess, needs: Sequence[Need]) -> list[bool]:
        self.asked.extend(needs)
        return [need not in self.denied for need in needs]


@pytest.fixture
def self_managed() -> tuple[Deps, Cluster]:
    sealer = Sealer.from_setting(new_key_setting("t1"))
    deps = Deps(at_rest=sealer, transport=sealer, local_runtime=True)
    cluster_id = uuid.uuid4()
    sealed = sealer.seal(
        json.dumps({"token": "t0ken", "ca_cert": None, "kubeconfig": None}).encode(),
        aad=cluster_id.bytes,
    )
    now = datetime.datetime.now(datetime.UTC)
    row = Cluster(
        id=cluster_id,
        organization_id=uuid.uuid4(),
        name="prod",
        kind="self_managed",
        api_url="https://k8s.example.com:6443",
        credentials_sealed=sealed,
        version=1,
        created_at=now,
        updated_at=now,
        deleted_at=None,
    )
    return deps, row


async def test_incomplete_rules_are_completed_by_access_reviews(
    self_managed: tuple[Deps, Cluster],
) -> None:
    deps, row = self_managed
    patch = Need("apps", "deployments", "patch")
    probe = FakeProbe({patch})
    body = await clusters.check(deps, row, probe)
    assert probe.asked == list(REQUIRED)  # no rule listed: every need asked on its own
    assert body["permissions"] == {"ok": False, "missing": ["patch deployments.apps"]}
    assert body["reason"] == "PERMISSIONS_MISSING"
    assert (await clusters.check(deps, row, FakeProbe(set())))["ok"] is True


async def test_a_failed_visit_answers_its_reason_only(self_managed: tuple[Deps, Cluster]) -> None:
    deps, row = self_managed
    body = await clusters.check(deps, row, FakeProbe(set(), fails=CheckReason.UNAUTHORIZED))
    assert body == {
        "ok": False,
        "kind": "self_managed",
        "reason": "UNAUTHORIZED",
        "message": "The API server refused the credentials.",
    }


CHECK = "POST /internal/v1/clusters/{cluster_id}/check"


async def test_every_answer_of_the_check_is_sent_as_it_is_and_documented(
    self_managed: tuple[Deps, Cluster],
) -> None:
    """The check route answers through ``ClusterCheckOut``: each answer the check gives must pass
    that model unchanged and name only fields it documents. A good cluster's answer has no
    message, which the model once required: every successful check of a real cluster was a 500
    (seen only against a real API server: tests/e2e/test_clusters.py, tests/security)."""
    deps, row = self_managed
    local = replace(row, kind="local", api_url=None, credentials_sealed=None)
    missing = [Need("apps", "deployments", "patch")]
    answers = [
        cluster_check.answer(facts(), []),  # all well: nodes and permissions, no message
        cluster_check.answer(facts(nodes=None), missing),  # may not list nodes: null
        cluster_check.answer(facts(nodes=(Node("n", False),)), []),  # no Ready node
        await clusters.check(deps, row, FakeProbe(set(), fails=CheckReason.UNREACHABLE)),
        await clusters.check(deps, local, FakeProbe(set())),
    ]
    assert "message" not in answers[0]
    for body in answers:
        assert as_sent(CHECK, body) == body
        assert undocumented(ClusterCheckOut, body) == [], body
