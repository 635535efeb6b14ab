"""Whether a self-managed cluster's API server can be reached with its credentials now: one
``GET /version`` with its bearer token (an unknown token is refused there even though the path
is public), through the egress guard (``slipway_libs.egress``: the API server's address is
checked against the platform's allow-list on every connection, as the catalog's probe does).

Failures raise ``RuntimeFailure(CLUSTER_UNREACHABLE)`` with a message for people: what failed,
never the token.
"""

from __future__ import annotations

import functools
import ssl
from urllib.parse import urlsplit

import httpx
import structlog

from slipway_deployer.adapters.runtime.base import ClusterAccess, FailureReason, RuntimeFailure
from slipway_libs.egress import (
    EgressError,
    EgressPolicy,
    Resolver,
    TargetNotAllowed,
    guarded_client,
    system_resolver,
    tls_verify,
)

log = structlog.get_logger(__name__)


class ApiServerReach:
    def __init__(
        self, policy: EgressPolicy, *, timeout_s: float, resolver: Resolver = system_resolver
    ) -> None:
        self._policy = policy
        self._client = functools.partial(
            guarded_client, policy, timeout_s=timeout_s, resolver=resolver
        )

    async def __call__(self, access: ClusterAccess) -> None:
        """Returns once the API server answered ``/version`` to these credentials."""
        parts = urlsplit(access.api_url)
        host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
        if parts.scheme != "https" and not self._policy.names(host, port):
            raise _unreachable(f"{access.api_url} is plain http and not allow-listed")
        try:
            response = await self._version(access)
        except TargetNotAllowed as refused:
            raise _unreachable(f"the platform does not connect to {refused.message}") from None
        except (EgressError, TimeoutError, httpx.HTTPError, ssl.SSLError) as exc:
            log.info("cluster.unreachable", cluster_id=access.cluster_id, error=repr(exc))
            raise _unreachable(
                f"its API server {access.api_url} could not be reached ({type(exc).__name__})"
            ) from None
        if response.status_code in (401, 403):
            raise _unreachable(
                f"its API server refused the credentials (status {response.status_code})"
            )
        if response.status_code != 200:
            raise _unreachable(f"its API server answered /version with {response.status_code}")

    async def _version(self, access: ClusterAccess) -> httpx.Response:
        verify = tls_verify(insecure=access.insecure, ca_pem=access.ca_cert)
        async with self._client(access.api_url, token=access.token, verify=verify) as client:
            return await client.get("/version")


def _unreachable(why: str) -> RuntimeFailure:
    return RuntimeFailure(FailureReason.CLUSTER_UNREACHABLE, why)
