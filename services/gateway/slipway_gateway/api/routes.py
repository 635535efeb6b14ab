"""The public API: one handler per route of the table, all through the same policy point."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response

from slipway_gateway.access.authenticate import Authenticator
from slipway_gateway.api.log_docs import route_docs
from slipway_gateway.api.org_events import OrganizationEvents
from slipway_gateway.api.org_events import unavailable as events_unavailable
from slipway_gateway.api.paths import internal_path, path_ids
from slipway_gateway.api.proxy import Upstreams, check_json, passed_on
from slipway_gateway.api.streams import UpstreamStreams
from slipway_gateway.api.table import ROUTES, RouteSpec
from slipway_gateway.domain.catalog_index import CatalogIndex
from slipway_gateway.domain.policy import Action, Decision, Resource, Standing, decide
from slipway_gateway.domain.principal import Principal, TokenPrincipal, UserPrincipal
from slipway_gateway.domain.projection import AccessProjection
from slipway_gateway.domain.revisions import CallerRevisions
from slipway_libs import changes
from slipway_libs.actor import Actor
from slipway_libs.errors import BusinessError

PREFIX = "/api/v1"
Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class TokenUsage:
    """Last use of each API token, flushed to identity in batches (not on the request path)."""

    def __init__(self) -> None:
        self.pending: dict[uuid.UUID, datetime] = {}

    def mark(self, token_id: uuid.UUID) -> None:
        self.pending[token_id] = datetime.now(UTC)

    def take(self) -> dict[uuid.UUID, datetime]:
        taken, self.pending = self.pending, {}
        return taken


def add_route(router: APIRouter, spec: RouteSpec, handler: Handler) -> None:
    """One route of the table on ``router``, documented as the OpenAPI document shows it (the
    gateway's router and ``openapi`` both add their routes here). The handler parses nothing:
    the schemas are written out (``route_docs``)."""
    docs = route_docs(spec)
    router.add_api_route(
        spec.path,
        handler,
        methods=[spec.method],
        summary=spec.summary,
        name=f"{spec.method} {spec.path}",
        status_code=spec.success,
        responses=docs.get("responses"),
        openapi_extra={
            "x-slipway-action": spec.action or spec.access,
            **docs.get("openapi_extra", {}),
        },
    )


class Gateway:
    def __init__(
        self,
        *,
        projection: AccessProjection,
        upstreams: Upstreams,
        usage: TokenUsage,
        index: CatalogIndex | None = None,
        authorize: bool = True,
        streams: UpstreamStreams | None = None,
        events: OrganizationEvents | None = None,
    ) -> None:
        self.projection = projection
        self.index = index or CatalogIndex()
        self.authenticator = Authenticator(projection, upstreams.signing_keys)
        upstreams.on_access_changes = self._apply_changes
        self.upstreams = upstreams
        self.usage = usage
        # long-lived answers (log follows) on connections of their own
        self.streams = streams or UpstreamStreams(
            urls=upstreams.urls, internal_token=upstreams.internal_token
        )
        self.events = events  # the organizations' event streams (None: not served here)
        self.authorize = authorize  # False only in the overhead benchmark
        self._deployments: dict[uuid.UUID, uuid.UUID] = {}  # deployment -> its environment
        self.revisions = CallerRevisions()

    def _apply_changes(self, changes: list[dict[str, Any]]) -> None:
        for change in changes:
            if change["type"] == "deployer.DeploymentQueued":  # read-your-writes: authorize
                data = change["data"]  # the new deployment's routes at once, without asking
                self._remember(uuid.UUID(data["deployment_id"]), uuid.UUID(data["environment_id"]))
            elif change["type"].startswith("catalog."):
                self.index.apply(change["type"], change["data"])
            else:
                self.projection.apply(change["type"], change["data"])

    def router(self) -> APIRouter:
        router = APIRouter(prefix=PREFIX)
        for spec in ROUTES:
            add_route(router, spec, self._handler(spec))
        return router

    def _handler(self, spec: RouteSpec) -> Handler:
        async def handle(request: Request) -> Response:
            return await self.handle(spec, request)

        return handle

    async def handle(self, spec: RouteSpec, request: Request) -> Response:
        # ids first: a raw parameter formatted into the internal URL let `..` climb out of
        # it (DELETE …/api-tokens/%2E%2E deleted the organization); only UUIDs go further
        params: dict[str, Any] = path_ids(request.path_params)
        body = await request.body()
        check_json(body, request.headers.get("content-type"))
        if spec.access == "public":
            address = request.client.host if request.client else "unknown"
            return await self.upstreams.forward(
                request,
                service=spec.upstream,
                path=internal_path(spec.upstream_path, params),
                actor=None,
                body=body,
                extra_headers={
                    "x-slipway-client-address": address,
                    **passed_on(request, spec.passed_headers),
                },
            )
        principal = await self.authenticator.principal(request.headers.get("authorization"))
        if isinstance(principal, TokenPrincipal):
            self.usage.mark(principal.token_id)
        if spec.access == "user":
            return await self._as_user(spec, request, principal, params, body)
        if spec.target == "deployment":
            params["deployment_environment"] = await self._deployment_environment(params)
        resource = self._resource(spec, params, request, body)
        standing = self._authorize(spec, principal, resource)
        actor = _actor(principal, standing, request, resource.organization_id if resource else None)
        if spec.upstream == "gateway":  # the organization's event stream, served here
            if self.events is None or resource is None:
                raise events_unavailable()
            return self.events.open(
                request, principal=principal, actor=actor, organization_id=resource.organization_id
            )
        if spec.upstream == "logs" and _follows(request):
            # authorized as the plain read; the logs service streams it from ``…/stream``
            path = internal_path(spec.upstream_path, params) + "/stream"
            return await self.streams.open(request, service="logs", path=path, actor=actor)
        response = await self.upstreams.forward(
            request,
            service=spec.upstream,
            path=internal_path(spec.upstream_path, params),
            actor=actor,
            body=body,
            extra_headers=self._freshness(spec, principal, resource, request),
        )
        answered = response.headers.get(changes.REVISION_HEADER)
        if answered and spec.upstream == "catalog":
            self.revisions.saw(_principal_key(principal), changes.parse_revisions(answered))
        if spec.filter_items and standing is not None and standing.custom is not None:
            return _filtered(response, spec.filter_items, standing, resource)
        return response

    async def authorize_stream(
        self, spec: RouteSpec, connection: HTTPConnection, authorization: str | None
    ) -> tuple[Actor, str]:
        """A log follow that is not an HTTP request (a WebSocket), authorized as ``handle``
        authorizes the route's plain read: the actor and the logs service's stream path."""
        params: dict[str, Any] = path_ids(connection.path_params)
        principal = await self.authenticator.principal(authorization)
        if isinstance(principal, TokenPrincipal):
            self.usage.mark(principal.token_id)
        if spec.target == "deployment":
            params["deployment_environment"] = await self._deployment_environment(params)
        resource = self._resource(spec, params, connection, b"")
        standing = self._authorize(spec, principal, resource)
        organization = resource.organization_id if resource else None
        actor = _actor(principal, standing, connection, organization)
        return actor, internal_path(spec.upstream_path, params) + "/stream"

    def _freshness(
        self, spec: RouteSpec, principal: Principal, resource: Resource | None, request: Request
    ) -> dict[str, str]:
        """A deployer request carries the caller's latest catalog revision of its project: the
        deployer serves it from a copy of the catalog that has the caller's writes."""
        if spec.upstream != "deployer" or resource is None or resource.project_id is None:
            return {}
        handed_back = changes.parse_revisions(request.headers.get(changes.REVISION_HEADER))
        project = resource.project_id
        revision = self.revisions.wanted(_principal_key(principal), project, handed_back)
        if not revision:
            return {}
        return {changes.REVISION_HEADER: changes.format_revisions({project: revision})}

    def _resource(
        self, spec: RouteSpec, params: dict[str, Any], request: HTTPConnection, body: bytes
    ) -> Resource | None:
        """What the request touches, from the path, the query or the body (None: unknown)."""
        target = spec.target
        if target == "org":
            org_id = _uuid(params.get("org"))
            return Resource(organization_id=org_id) if org_id else None
        if target == "deployment":
            return self.index.resource("environment", params.get("deployment_environment"))
        if target in ("variable_query", "variable_body"):
            source: Any = request.query_params if target == "variable_query" else _json(body)
            where = "query." if target == "variable_query" else ""
            scope, parent_id = _variable_parent(source, where)
            return self.index.parent(scope, parent_id)
        resource = self.index.resource(target, _uuid(params.get(target)))
        if resource is not None and spec.target_from_body:
            wanted = _json(body)
            mode = wanted.get("mode") if isinstance(wanted.get("mode"), str) else None
            cluster = _uuid(wanted.get("cluster_id"))
            resource = replace(
                resource,
                environment_mode=mode or resource.environment_mode,
                cluster_id=cluster or resource.cluster_id,
                # a clone copies its source, secrets included: the source must be readable
                copied_mode=resource.environment_mode if target == "environment" else None,
            )
        return resource

    async def _deployment_environment(self, params: dict[str, Any]) -> uuid.UUID | None:
        """A deployment never moves: its environment is asked once, then remembered."""
        deployment_id = _uuid(params.get("deployment"))
        if deployment_id is None:
            return None
        known = self._deployments.get(deployment_id)
        if known is None:
            known = await self.upstreams.deployment_environment(deployment_id)
            if known is not None:
                self._remember(deployment_id, known)
        return known

    def _remember(self, deployment_id: uuid.UUID, environment_id: uuid.UUID) -> None:
        if len(self._deployments) >= 100_000:  # bounded: the oldest is asked again if needed
            self._deployments.pop(next(iter(self._deployments)))
        self._deployments[deployment_id] = environment_id

    def _authorize(
        self, spec: RouteSpec, principal: Principal, resource: Resource | None
    ) -> Standing | None:
        org_id = resource.organization_id if resource else None
        standing = self.projection.standing(principal, org_id) if org_id else None
        if not self.authorize:
            return standing
        assert spec.action is not None
        decision = decide(standing, spec.action, resource) if resource else Decision.HIDE
        if decision is Decision.HIDE:
            raise _not_found(spec.target)
        if decision is Decision.FORBID:
            raise BusinessError(
                "Your role does not allow this.",
                code="FORBIDDEN",
                status_code=403,
                details={"action": spec.action.value},
            )
        return standing

    async def _as_user(
        self,
        spec: RouteSpec,
        request: Request,
        principal: Principal,
        params: dict[str, Any],
        body: bytes,
    ) -> Response:
        if isinstance(principal, TokenPrincipal):
            if spec.method == "GET" and spec.path == "/organizations":
                return await self._token_organizations(request, principal)
            raise BusinessError(
                "This needs a signed-in user, not an API token.", code="USERS_ONLY", status_code=403
            )
        assert isinstance(principal, UserPrincipal)
        path = internal_path(
            spec.upstream_path,
            {**params, "user_id": principal.user_id, "session_id": principal.session_id},
        )
        return await self.upstreams.forward(
            request,
            service=spec.upstream,
            path=path,
            actor=_actor(principal, None, request),
            body=body,
            method=spec.upstream_method,
        )

    async def _token_organizations(self, request: Request, principal: TokenPrincipal) -> Response:
        upstream = await self.upstreams.forward(
            request,
            service="identity",
            path=internal_path(
                "/internal/v1/organizations/{org}", {"org": principal.organization_id}
            ),
            actor=_actor(principal, None, request, principal.organization_id),
            body=b"",
        )
        if upstream.status_code != 200:
            return upstream
        # the token's role in it, as a user's list gives theirs (the document requires it)
        organization = json.loads(bytes(upstream.body)) | {"role": self._role_name(principal)}
        return JSONResponse({"items": [organization], "next_cursor": None})

    def _role_name(self, principal: TokenPrincipal) -> str:
        """A built-in role's name, or the custom role's (``custom`` until the projection has it)."""
        if principal.role:
            return principal.role
        custom = self.projection.custom_roles.get(principal.custom_role_id or uuid.UUID(int=0))
        return str(custom.data.get("name", "custom")) if custom else "custom"


def _follows(request: Request) -> bool:
    """``follow=true`` (or ``1``) asks for the route's stream instead of one page."""
    return request.query_params.get("follow", "").lower() in ("true", "1")


def _principal_key(principal: Principal) -> uuid.UUID:
    return principal.user_id if isinstance(principal, UserPrincipal) else principal.token_id


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


_SCOPES = ("project", "environment", "service")


def _variable_parent(source: Any, where: str) -> tuple[str, uuid.UUID]:
    """The parent a variable request names, checked before any lookup: a request that lacks it
    answers 422 naming the fields, not 404 for a parent nobody named."""
    problems = []
    scope, parent = source.get("scope"), source.get("parent_id")
    if scope is None:
        problems.append({"path": f"{where}scope", "type": "missing", "message": "Field required"})
    elif scope not in _SCOPES:
        problems.append(
            {
                "path": f"{where}scope",
                "type": "enum",
                "message": "Input should be 'project', 'environment' or 'service'",
            }
        )
    parent_id = _uuid(parent) if isinstance(parent, str) else None
    if parent is None:
        problems.append(
            {"path": f"{where}parent_id", "type": "missing", "message": "Field required"}
        )
    elif parent_id is None:
        problems.append(
            {
                "path": f"{where}parent_id",
                "type": "uuid_parsing",
                "message": "Input should be a UUID",
            }
        )
    if problems or parent_id is None:
        raise BusinessError(
            "The request is invalid.", code="VALIDATION_ERROR", status_code=422, details=problems
        )
    return str(scope), parent_id


def _json(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body) if body else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


_NOT_FOUND = {
    "org": "ORGANIZATION",
    "cluster": "CLUSTER",
    "project": "PROJECT",
    "environment": "ENVIRONMENT",
    "service": "SERVICE",
    "stage": "STAGE",
    "variable": "VARIABLE",
    "deployment": "DEPLOYMENT",
    "variable_query": "PARENT",
    "variable_body": "PARENT",
}


def not_found_code(target: str) -> str:
    """The code of the 404 answered for a route's target the caller may not see (or that does
    not exist: the two are one answer); the OpenAPI document lists the same code."""
    return f"{_NOT_FOUND.get(target, 'RESOURCE')}_NOT_FOUND"


def _not_found(target: str) -> BusinessError:
    """Unknown, deleted and other tenants' resources answer the same 404."""
    code = not_found_code(target)
    what = code.removesuffix("_NOT_FOUND").lower()
    return BusinessError(f"No such {what}.", code=code, status_code=404)


def _filtered(
    response: Response, kind: str, standing: Standing, resource: Resource | None
) -> Response:
    """A list answer, without the items a custom role may not read."""
    if response.status_code != 200 or resource is None:
        return response
    body = json.loads(bytes(response.body))
    action = Action.PROJECT_READ if kind == "project" else Action.ENV_READ

    def readable(item: dict[str, Any]) -> bool:
        target = (
            replace(resource, project_id=_uuid(item.get("id")))
            if kind == "project"
            else replace(
                resource,
                environment_mode=item.get("mode"),
                cluster_id=_uuid(item.get("cluster_id")),
            )
        )
        return decide(standing, action, target) is Decision.ALLOW

    body["items"] = [item for item in body.get("items", []) if readable(item)]
    return JSONResponse(body, status_code=200)


def _actor(
    principal: Principal,
    standing: Standing | None,
    request: HTTPConnection,
    organization_id: uuid.UUID | None = None,
) -> Actor:
    origin = "cli" if request.headers.get("x-slipway-origin", "").lower() == "cli" else "api"
    role = None
    if standing is not None:
        role = standing.role or "custom"
    if isinstance(principal, TokenPrincipal):
        return Actor(
            type="api_token",
            id=str(principal.token_id),
            name=principal.name,
            organization_role=role or principal.role,
            organization_id=organization_id,
            origin=origin,
        )
    return Actor(
        type="user",
        id=str(principal.user_id),
        user_id=principal.user_id,
        organization_role=role,
        organization_id=organization_id,
        origin=origin,
    )
