"""Talking to a self-managed cluster's API server (the cluster check): its version, its nodes
and what Slipway's account may do there (a SelfSubjectRulesReview, and SelfSubjectAccessReviews
when the API server says the rules are incomplete).

Every connection goes through the egress guard (``slipway_libs.egress``): the API server's name is
resolved once at connection time, every address checked against the platform's allow-list, and
the connection made to a checked address. Failures become a ``ClusterCheckFailed`` with a stable
reason; the low-level error goes only into its ``detail`` (the server's log).
"""

from __future__ import annotations

import contextlib
import functools
import ssl
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx

from slipway_catalog.domain.cluster_check import CHECK_NAMESPACE, Facts, Need, Node, Rule
from slipway_catalog.domain.clusters import CheckReason, ClusterCheckFailed
from slipway_catalog.domain.kubeconfig import ClusterAccess
from slipway_libs.egress import (
    EgressError,
    EgressPolicy,
    Resolver,
    TargetNotAllowed,
    guarded_client,
    system_resolver,
    tls_verify,
)


class KubernetesProbe:
    """Reads what the cluster check needs; one guarded httpx client per visit.

    Plain HTTP with the API server's JSON rather than ``kubernetes-asyncio``: that client
    connects through aiohttp, around the egress guard, which must check every address this
    process connects to for a user-chosen target; the check needs four small requests.
    """

    def __init__(
        self, timeout_s: float, policy: EgressPolicy, *, resolver: Resolver = system_resolver
    ) -> None:
        self._policy = policy
        self._client = functools.partial(
            guarded_client, policy, timeout_s=timeout_s, resolver=resolver
        )

    async def facts(self, access: ClusterAccess) -> Facts:
        """The version, the nodes and the account's own rules (raises ClusterCheckFailed)."""
        async with self._session(access) as client:
            version = _kubernetes_version(await client.get("/version"))
            nodes, more = _nodes(await client.get("/api/v1/nodes", params={"limit": _MAX_NODES}))
            rules, incomplete = _rules(
                await client.post(f"{_AUTHORIZATION}/selfsubjectrulesreviews", json=_RULES_REVIEW)
            )
        return Facts(version, nodes, more, rules, incomplete)

    async def allowed(self, access: ClusterAccess, needs: Sequence[Need]) -> list[bool]:
        """One SelfSubjectAccessReview per need (when the rules review was incomplete)."""
        async with self._session(access) as client:
            return [
                _allowed(
                    await client.post(
                        f"{_AUTHORIZATION}/selfsubjectaccessreviews", json=_access_review(n)
                    )
                )
                for n in needs
            ]

    @contextlib.asynccontextmanager
    async def _session(self, access: ClusterAccess) -> AsyncIterator[httpx.AsyncClient]:
        """A client for the API server; connection failures become ClusterCheckFailed."""
        server = access.server
        if server.scheme != "https" and not self._policy.names(server.host, server.port):
            raise ClusterCheckFailed(CheckReason.TARGET_NOT_ALLOWED, "plain http, not allow-listed")
        verify = tls_verify(insecure=access.insecure, ca_pem=access.ca_pem)
        try:
            async with self._client(server.url, token=access.token, verify=verify) as client:
                yield client
        except TargetNotAllowed as exc:
            raise ClusterCheckFailed(CheckReason.TARGET_NOT_ALLOWED, exc.message) from None
        except (EgressError, TimeoutError, httpx.TimeoutException) as exc:
            raise ClusterCheckFailed(CheckReason.UNREACHABLE, repr(exc)) from None
        except httpx.HTTPError as exc:
            raise ClusterCheckFailed(_reason_of(exc), repr(exc)) from None


_AUTHORIZATION = "/apis/authorization.k8s.io/v1"
_MAX_NODES = 100
_RULES_REVIEW = {
    "apiVersion": "authorization.k8s.io/v1",
    "kind": "SelfSubjectRulesReview",
    "spec": {"namespace": CHECK_NAMESPACE},
}


def _access_review(need: Need) -> dict[str, Any]:
    resource, _, subresource = need.resource.partition("/")
    attributes = {"group": need.group, "resource": resource, "verb": need.verb}
    if subresource:
        attributes["subresource"] = subresource
    if need.namespaced:
        attributes["namespace"] = CHECK_NAMESPACE
    return {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": attributes},
    }


def _json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    if response.status_code == 401:
        raise ClusterCheckFailed(CheckReason.UNAUTHORIZED, f"{what}: status 401")
    try:
        body = response.json()
    except ValueError:
        raise ClusterCheckFailed(CheckReason.NOT_KUBERNETES, f"{what}: not JSON") from None
    if not isinstance(body, dict):
        raise ClusterCheckFailed(CheckReason.NOT_KUBERNETES, f"{what}: not a JSON object")
    return body


def _nodes(response: httpx.Response) -> tuple[tuple[Node, ...] | None, int]:
    """The listed nodes and how many more there are; None when the account may not list them
    (the permissions report says so)."""
    if response.status_code == 403:
        return None, 0
    body = _json_object(response, "nodes")
    if response.status_code != 200 or not isinstance(body.get("items"), list):
        raise ClusterCheckFailed(
            CheckReason.NOT_KUBERNETES, f"nodes: status {response.status_code}"
        )
    nodes = tuple(Node.from_json(item) for item in body["items"] if isinstance(item, dict))
    remaining = (body.get("metadata") or {}).get("remainingItemCount")
    return nodes, remaining if isinstance(remaining, int) and remaining > 0 else 0


def _rules(response: httpx.Response) -> tuple[tuple[Rule, ...], bool]:
    """The account's rules and whether the list is incomplete; a review the API server refuses
    (403) is an empty, incomplete list: each need is then asked on its own."""
    if response.status_code == 403:
        return (), True
    body = _json_object(response, "rules review")
    if response.status_code not in (200, 201):
        raise ClusterCheckFailed(
            CheckReason.NOT_KUBERNETES, f"rules review: status {response.status_code}"
        )
    status = body.get("status") or {}
    entries = status.get("resourceRules") or []
    rules = tuple(Rule.from_json(e) for e in entries if isinstance(e, dict))
    return rules, bool(status.get("incomplete")) or bool(status.get("evaluationError"))


def _allowed(response: httpx.Response) -> bool:
    """An access review's answer; one the API server refuses counts as not allowed."""
    if response.status_code == 403:
        return False
    body = _json_object(response, "access review")
    return response.status_code in (200, 201) and (body.get("status") or {}).get("allowed") is True


def _reason_of(exc: httpx.HTTPError) -> CheckReason:
    """A TLS failure (httpx reports it as a connect error caused by an SSL error), an address
    that cannot be connected to, or one that answers something other than HTTP."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLError):
            return CheckReason.TLS_ERROR
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, (httpx.ConnectError, httpx.ReadError, httpx.WriteError)):
        return CheckReason.UNREACHABLE
    return CheckReason.NOT_KUBERNETES


def _kubernetes_version(response: httpx.Response) -> str:
    if response.status_code in (401, 403):
        raise ClusterCheckFailed(CheckReason.UNAUTHORIZED, f"status {response.status_code}")
    if response.status_code != 200:
        raise ClusterCheckFailed(CheckReason.NOT_KUBERNETES, f"status {response.status_code}")
    try:
        version = response.json()["gitVersion"]
    except (ValueError, KeyError, TypeError):
        raise ClusterCheckFailed(CheckReason.NOT_KUBERNETES, "no gitVersion in /version") from None
    if not isinstance(version, str):
        raise ClusterCheckFailed(CheckReason.NOT_KUBERNETES, "gitVersion is not a string")
    return version[:100]
