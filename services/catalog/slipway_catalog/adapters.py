"""Talking to a self-managed cluster's API server (the connectivity check).

Every connection goes through the egress guard (``slipway_libs.egress``): the API server's name is
resolved once at connection time, every address checked against the platform's allow-list, and
the connection made to a checked address. Failures become a ``ClusterCheckFailed`` with a stable
reason; the low-level error goes only into its ``detail`` (the server's log).
"""

from __future__ import annotations

import asyncio
import ssl

import httpx

from slipway_catalog.domain.clusters import CheckReason, ClusterCheckFailed
from slipway_catalog.domain.kubeconfig import ClusterAccess
from slipway_libs.egress import (
    EgressError,
    EgressPolicy,
    Resolver,
    TargetNotAllowed,
    guarded_transport,
    system_resolver,
)


class KubernetesProbe:
    def __init__(
        self, timeout_s: float, policy: EgressPolicy, *, resolver: Resolver = system_resolver
    ) -> None:
        self._timeout = timeout_s
        self._policy = policy
        self._resolver = resolver

    async def version(self, access: ClusterAccess) -> str:
        server = access.server
        if server.scheme != "https" and not self._policy.names(server.host, server.port):
            raise ClusterCheckFailed(CheckReason.TARGET_NOT_ALLOWED, "plain http, not allow-listed")
        headers = {"authorization": f"Bearer {access.token}"} if access.token else {}
        transport = guarded_transport(self._policy, verify=_verify(access), resolver=self._resolver)
        try:
            async with (
                asyncio.timeout(self._timeout),
                httpx.AsyncClient(transport=transport, timeout=self._timeout) as client,
            ):
                response = await client.get(f"{server.url}/version", headers=headers)
        except TargetNotAllowed as exc:
            raise ClusterCheckFailed(CheckReason.TARGET_NOT_ALLOWED, exc.message) from None
        except (EgressError, TimeoutError, httpx.TimeoutException) as exc:
            raise ClusterCheckFailed(CheckReason.UNREACHABLE, repr(exc)) from None
        except httpx.HTTPError as exc:
            raise ClusterCheckFailed(_reason_of(exc), repr(exc)) from None
        return _kubernetes_version(response)


def _verify(access: ClusterAccess) -> ssl.SSLContext | bool:
    if access.insecure:
        return False
    if access.ca_pem is None:
        return True
    context = ssl.create_default_context()
    context.load_verify_locations(cadata=access.ca_pem)  # checked when the cluster was saved
    return context


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
