"""The cluster check: what Slipway's account on a Kubernetes cluster needs, and the answer.

Invariants:
- ``REQUIRED`` is what the ``kubernetes`` runtime does on a cluster (one namespace per
  environment; Deployments, StatefulSets, Services, Secrets, PVCs, CronJobs, Jobs, Ingresses in
  it, applied server-side and watched; pods, their logs and events read to explain a rollout;
  nodes read by this check). It is the same set the devstack grants its ``slipway-deployer``
  account (deploy/devstack/slipway_devstack/kubernetes_rbac.py), minus the verbs Slipway never
  uses (``update``, ``deletecollection``).
- Permissions are read from one SelfSubjectRulesReview (the account's own rules, evaluated by
  the API server for a namespace no one binds roles in, so only cluster-wide grants count, as
  they must for a namespace per environment). When the API server says that list is incomplete
  (another authorizer, e.g. a webhook, may allow more), each need the rules do not cover is
  asked again by a SelfSubjectAccessReview: a need is missing only when both say no.
- A rule grants a need when its groups, resources and verbs match (``*`` matching any) and it
  names no ``resourceNames`` (a rule limited to named objects cannot create new ones).
- The answer is ``ok`` only when the version was read, every need is granted and at least one
  node is Ready; otherwise ``reason`` is the first problem and ``message`` says all of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

CHECK_NAMESPACE: Final = "slipway-permissions-check"
_READ = ("get", "list", "watch")
_MANAGE = (*_READ, "create", "patch", "delete")


@dataclass(frozen=True, slots=True)
class Need:
    group: str  # "" is the core group
    resource: str  # "deployments", or a subresource "pods/log"
    verb: str
    namespaced: bool = True

    def __str__(self) -> str:
        resource = f"{self.resource}.{self.group}" if self.group else self.resource
        return f"{self.verb} {resource}"


def _needs(group: str, resources: Iterable[str], verbs: Iterable[str], **kw: bool) -> list[Need]:
    return [Need(group, resource, verb, **kw) for resource in resources for verb in verbs]


REQUIRED: Final[tuple[Need, ...]] = (
    *_needs("", ["namespaces"], _MANAGE, namespaced=False),
    *_needs("", ["services", "secrets", "configmaps", "persistentvolumeclaims"], _MANAGE),
    *_needs("", ["serviceaccounts"], _MANAGE),
    *_needs("apps", ["deployments", "statefulsets"], _MANAGE),
    *_needs("apps", ["deployments/scale", "statefulsets/scale"], ("get", "patch")),
    *_needs("apps", ["replicasets"], _READ),
    *_needs("batch", ["jobs", "cronjobs"], _MANAGE),
    *_needs("networking.k8s.io", ["ingresses"], _MANAGE),
    *_needs("networking.k8s.io", ["ingressclasses"], _READ, namespaced=False),
    *_needs("", ["pods"], (*_READ, "delete")),
    *_needs("", ["pods/log"], ("get",)),
    *_needs("", ["events"], _READ),
    *_needs("", ["nodes"], ("get", "list"), namespaced=False),
)


@dataclass(frozen=True, slots=True)
class Rule:
    """One ``resourceRules`` entry of a SelfSubjectRulesReview."""

    api_groups: tuple[str, ...]
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    resource_names: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Rule:
        def strings(key: str) -> tuple[str, ...]:
            value = data.get(key) or ()
            return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()

        return cls(
            strings("apiGroups"), strings("resources"), strings("verbs"), strings("resourceNames")
        )

    def grants(self, need: Need) -> bool:
        if self.resource_names:
            return False
        return (
            _matches(self.api_groups, need.group)
            and _matches(self.verbs, need.verb)
            and _resource_matches(self.resources, need.resource)
        )


def _matches(allowed: Sequence[str], value: str) -> bool:
    return "*" in allowed or value in allowed


def _resource_matches(allowed: Sequence[str], resource: str) -> bool:
    """RBAC's forms: ``*`` (all, subresources included), ``pods``, ``pods/log``, ``*/scale``."""
    if "*" in allowed or resource in allowed:
        return True
    _, slash, sub = resource.partition("/")
    return bool(slash) and f"*/{sub}" in allowed


def not_granted(rules: Iterable[Rule], needs: Iterable[Need] = REQUIRED) -> list[Need]:
    rules = list(rules)
    return [need for need in needs if not any(rule.grants(need) for rule in rules)]


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    ready: bool
    kubelet_version: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Node:
        metadata, status = data.get("metadata") or {}, data.get("status") or {}
        conditions = status.get("conditions") or []
        ready = any(
            isinstance(c, dict) and c.get("type") == "Ready" and c.get("status") == "True"
            for c in conditions
        )
        info = status.get("nodeInfo") or {}
        version = info.get("kubeletVersion")
        return cls(
            name=str(metadata.get("name", ""))[:253],
            ready=ready,
            kubelet_version=version[:100] if isinstance(version, str) else None,
        )


@dataclass(frozen=True, slots=True)
class Facts:
    """What one visit to the API server read."""

    version: str
    nodes: tuple[Node, ...] | None  # None: the account may not list nodes
    more_nodes: int  # nodes beyond those listed (the list is bounded)
    rules: tuple[Rule, ...]
    rules_incomplete: bool


def answer(facts: Facts, missing: Sequence[Need]) -> dict[str, Any]:
    """The check's answer for a cluster whose version could be read."""
    problems: list[tuple[str, str]] = []
    if missing:
        listed = ", ".join(str(need) for need in missing[:20])
        more = f" and {len(missing) - 20} more" if len(missing) > 20 else ""
        problems.append(
            (
                "PERMISSIONS_MISSING",
                f"Slipway's account may not: {listed}{more}. Grant them with a ClusterRole "
                "bound to the account (see the README's Clusters section).",
            )
        )
    ready = None if facts.nodes is None else sum(node.ready for node in facts.nodes)
    if ready == 0 and facts.more_nodes == 0:
        problems.append(("NO_READY_NODES", "The cluster has no Ready node: nothing can run."))
    body: dict[str, Any] = {
        "ok": not problems,
        "kind": "self_managed",
        "kubernetes_version": facts.version,
        "nodes": _nodes(facts),
        "permissions": {"ok": not missing, "missing": [str(need) for need in missing]},
    }
    if problems:
        body["reason"] = problems[0][0]
        body["message"] = " ".join(message for _, message in problems)
    return body


def _nodes(facts: Facts) -> dict[str, Any] | None:
    if facts.nodes is None:
        return None
    return {
        "total": len(facts.nodes) + facts.more_nodes,
        "ready": sum(node.ready for node in facts.nodes),
        "items": [
            {"name": n.name, "ready": n.ready, "kubelet_version": n.kubelet_version}
            for n in facts.nodes
        ],
    }
