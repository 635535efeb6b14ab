"""Forwarding an authorized request to the owning service's internal API."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

import httpx
import structlog
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from slipway_gateway.api.upstream_http import (
    IDEMPOTENT,
    Answer,
    Origin,
    StaleConnection,
    UpstreamBusy,
    UpstreamError,
    UpstreamPool,
    split_url,
)
from slipway_libs.actor import ACTOR_HEADER, INTERNAL_TOKEN_HEADER, Actor
from slipway_libs.changes import CHANGES_HEADER, REVISION_HEADER
from slipway_libs.errors import BusinessError, InvalidInput
from slipway_libs.json_nesting import check_nesting
from slipway_libs.logging import correlation_id
from slipway_libs.telemetry import current_carrier

log = structlog.get_logger(__name__)

# the catalog's revision: the caller may hand it back with a later request (read-your-writes)
_PASSED_BACK = (
    "content-type",
    "retry-after",
    "www-authenticate",
    "etag",
    "idempotent-replayed",
    REVISION_HEADER,
)
# the client's safe-retry and concurrent-edit headers: the service that owns the data decides
_PASSED_ON = ("idempotency-key", "if-match")


class Upstreams:
    """The services behind the gateway. Public requests are forwarded by ``UpstreamPool``
    (httptools' parser in C and a small pool: httpx spent half the gateway's CPU per request,
    aiohttp a quarter); ``http`` (httpx) serves the gateway's own calls (snapshots, keys,
    lookups, readiness), off the request path."""

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        urls: Mapping[str, str],
        internal_token: str | None,
        connections: int = 256,
        timeout_s: float = 10.0,
    ) -> None:
        self.http = http
        self.urls = dict(urls)
        self.internal_token = internal_token
        self.on_access_changes: Callable[[list[dict[str, Any]]], None] | None = None
        # parsed once: a URL that is not http://host[:port] fails here, at start-up
        self._origins = {service: split_url(url) for service, url in self.urls.items()}
        # every connection kept alive for the next request (a pool smaller than the requests in
        # flight opened and closed one per request); as httpx's timeout was: each of waiting
        # for a connection and for the answer
        self._forwarding = UpstreamPool(
            connections=connections, connect_timeout_s=timeout_s, read_timeout_s=timeout_s
        )

    async def aclose(self) -> None:
        await self.http.aclose()
        await self._forwarding.aclose()

    def _internal(self) -> dict[str, str]:
        return {INTERNAL_TOKEN_HEADER: self.internal_token} if self.internal_token else {}

    async def signing_keys(self) -> dict[str, Any]:
        response = await self.http.get(
            f"{self.urls['identity']}/internal/v1/signing-keys", headers=self._internal(), timeout=2
        )
        response.raise_for_status()
        keys: dict[str, Any] = response.json()
        return keys

    async def deployment_environment(self, deployment_id: uuid.UUID) -> uuid.UUID | None:
        """Which environment a deployment belongs to (None: no such deployment)."""
        response = await self.http.get(
            f"{self.urls['deployer']}/internal/v1/deployment-index",
            params={"ids": str(deployment_id)},
            headers=self._internal(),
            timeout=5,
        )
        response.raise_for_status()
        items = response.json()["items"]
        return uuid.UUID(items[0]["environment_id"]) if items else None

    async def forward(
        self,
        request: Request,
        *,
        service: str,
        path: str,
        actor: Actor | None,
        body: bytes | None = None,
        extra_headers: Mapping[str, str] | None = None,
        method: str | None = None,
    ) -> Response:
        headers = {
            **(extra_headers or {}),
            **passed_on(request, _PASSED_ON),
            **on_behalf(self.internal_token, actor),
        }
        content = await request.body() if body is None else body
        if content:
            given = passed_on(request, ("content-type",))
            headers["content-type"] = given.get("content-type", "application/json")
        verb = method or request.method
        origin, prefix = self._origins[service]
        # built from parsed ids, percent-encoded: sent as it is
        target = f"{prefix}{path}"
        if request.scope.get("query_string"):  # parsed only when there is one
            target = f"{target}?{urlencode(request.query_params.multi_items())}"
        try:
            answer = await self._send(verb, origin, target, content=content, headers=headers)
        except UpstreamBusy:
            # never sent: no connection to that service came free (or could be opened) in time
            raise BusinessError(
                f"The gateway is busy: the request was not sent to the {service} service.",
                code="GATEWAY_BUSY",
                status_code=503,
                headers={"Retry-After": "1"},
            ) from None
        except (UpstreamError, TimeoutError) as exc:
            raise _failure(service, exc) from None
        changes = answer.headers.get(CHANGES_HEADER)
        if changes and self.on_access_changes is not None:
            self.on_access_changes(json.loads(changes))
        passed = {k: v for k, v in answer.headers.items() if k.lower() in _PASSED_BACK}
        # a service's redirect is passed back as it is: the caller's to follow, or not
        return Response(answer.body, status_code=answer.status, headers=passed)

    async def _send(
        self, method: str, origin: Origin, target: str, *, content: bytes, headers: dict[str, str]
    ) -> Answer:
        """One request, sent again once when its connection died before any answer and the
        request is idempotent: an upstream may close a connection the pool still holds (after
        its own error, or an idle timeout), and that must not fail the next caller's request.
        (The pool itself sends an idempotent request again once on a fresh connection when a
        reused one died; this is the same rule, should that one die too. A refused connection
        is ``ConnectFailed``, never sent again: the service is down, not the connection.)
        """
        try:
            return await self._forwarding.request(
                origin, method, target, headers=headers, body=content
            )
        except StaleConnection as exc:
            if method.upper() not in IDEMPOTENT:
                raise
            log.info("gateway.upstream_retry", target=target, error=repr(exc))
            return await self._forwarding.request(
                origin, method, target, headers=headers, body=content
            )


def _failure(service: str, exc: BaseException) -> BusinessError:
    """What the caller is answered when a forwarded request got no answer: 504 when the
    service took too long, else 503 (logged, the cause only in the server log)."""
    if isinstance(exc, TimeoutError):  # no byte of the answer for the read timeout
        return BusinessError(
            f"The {service} service did not answer in time.",
            code="UPSTREAM_TIMEOUT",
            status_code=504,
        )
    log.warning("gateway.upstream_unavailable", service=service, error=repr(exc))
    return BusinessError(
        f"The {service} service is unavailable.",
        code="UPSTREAM_UNAVAILABLE",
        status_code=503,
    )


# a value the client may give such a header, as the services read them; the gateway refuses
# any other before sending (httpx cannot encode a non-ASCII one: it was a 500)
_INVALID_CODES = {"idempotency-key": "INVALID_IDEMPOTENCY_KEY"}


def on_behalf(internal_token: str | None, actor: Actor | None) -> dict[str, str]:
    """What every request and stream the gateway sends a service carries: the trace context,
    the gateway's internal token, who is asking and the correlation id."""
    headers = current_carrier()
    if internal_token:
        headers[INTERNAL_TOKEN_HEADER] = internal_token
    if actor is not None:
        headers[ACTOR_HEADER] = actor.header()
    cid = correlation_id.get()
    if cid:
        headers["x-correlation-id"] = cid
    return headers


def passed_on(request: HTTPConnection, names: tuple[str, ...]) -> dict[str, str]:
    """The client's headers ``names`` that it sent, each printable ASCII, else a 422 naming it
    (a service's own code when it has one: ``INVALID_IDEMPOTENCY_KEY``)."""
    headers: dict[str, str] = {}
    for name in names:
        value = request.headers.get(name)
        if value is None:
            continue
        if not all(" " <= c <= "~" for c in value):
            raise InvalidInput(
                _INVALID_CODES.get(name, "INVALID_HEADER"),
                f"The {name} header must be printable ASCII.",
                field=name,
            )
        headers[name] = value
    return headers


def upstream_failure(service: str, exc: httpx.HTTPError, *, event: str) -> BusinessError:
    """What the caller is answered when the service could not be reached or did not answer:
    504 on a timeout, else 503 (logged as ``event``, the cause only in the server log)."""
    if isinstance(exc, httpx.TimeoutException):
        return BusinessError(
            f"The {service} service did not answer in time.",
            code="UPSTREAM_TIMEOUT",
            status_code=504,
        )
    log.warning(event, service=service, error=repr(exc))
    return BusinessError(
        f"The {service} service is unavailable.",
        code="UPSTREAM_UNAVAILABLE",
        status_code=503,
    )


def check_json(body: bytes, content_type: str | None) -> None:
    """Malformed or too deeply nested JSON is refused here, before authentication and before
    any service sees it (the services check the nesting again)."""
    if not body:
        return
    if content_type and "json" not in content_type:
        raise BusinessError(
            "Send JSON (Content-Type: application/json).",
            code="UNSUPPORTED_MEDIA_TYPE",
            status_code=415,
        )
    check_nesting(body)  # first: the parser recurses once per level
    try:
        json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BusinessError(
            "The request body is not valid JSON.", code="MALFORMED_JSON", status_code=400
        ) from None
