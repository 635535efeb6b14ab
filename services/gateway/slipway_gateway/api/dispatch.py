"""The public routes' dispatch, ahead of FastAPI's router.

Every route of the table is one call of ``Gateway.handle``, which parses nothing itself (the
document is written out: ``contracts/openapi.json``). FastAPI's routing around it was about a
third of the gateway's CPU per read (a regular expression per route tried in turn, dependency
solving for a handler that has no dependencies, a walk of every route's version): here the
method and the number of path segments pick the few routes a request can be, in the table's
order, and the first whose fixed segments are equal is handled. What is not matched in full
(a wrong method, an unknown path, a WebSocket) goes on to FastAPI's router, which holds the
same routes, so its answers (404, 405) stay as they were.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from slipway_gateway.api.table import RouteSpec
from slipway_libs import route_index
from slipway_libs.errors import BusinessError
from slipway_libs.http import business_response, http_error_response


class Handles(Protocol):
    async def handle(self, spec: RouteSpec, request: Request) -> Response: ...


class RouteIndex(route_index.RouteIndex[RouteSpec]):
    """The table's routes under ``prefix`` (``/api/v1``), in the table's order."""

    def __init__(self, specs: Sequence[RouteSpec], prefix: str) -> None:
        if not prefix.startswith("/") or prefix.count("/") < 2:
            raise ValueError("the prefix has two segments or more (/api/v1)")
        super().__init__((spec.method, f"{prefix}{spec.path}", spec) for spec in specs)


class TableDispatch:
    """ASGI: a request matching a route of the table in full goes to ``Gateway.handle``;
    everything else to the app behind. Sits inside the service's own middlewares (trace
    context, errors, correlation id, body limit, JSON nesting), so those still see every
    request; a ``BusinessError`` is answered here as the app's handler would answer it."""

    def __init__(self, app: ASGIApp, *, gateway: Handles, index: RouteIndex) -> None:
        self.app = app
        self.gateway = gateway
        self.index = index

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("root_path"):
            return await self.app(scope, receive, send)
        found = self.index.match(scope["method"], scope["path"])
        if found is None:
            return await self.app(scope, receive, send)
        spec, params = found
        scope["path_params"] = params
        try:
            response = await self.gateway.handle(spec, Request(scope, receive))
        except BusinessError as exc:
            response = business_response(exc)
        except HTTPException as exc:  # Starlette's own (none raised today): its status, not 500
            response = http_error_response(exc)
        await response(scope, receive, send)
