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
from dataclasses import dataclass
from typing import Protocol

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from slipway_gateway.api.table import RouteSpec
from slipway_libs.errors import BusinessError
from slipway_libs.http import business_response


class Handles(Protocol):
    async def handle(self, spec: RouteSpec, request: Request) -> Response: ...


@dataclass(frozen=True)
class _Entry:
    spec: RouteSpec
    fixed: tuple[tuple[int, str], ...]  # (segment index, the literal it must be)
    params: tuple[tuple[int, str], ...]  # (segment index, the parameter it fills)


class RouteIndex:
    """The routes of a table by (method, number of segments), each list in the table's order:
    a path matches what Starlette's ``{name}`` (one non-empty segment) would match."""

    def __init__(self, specs: Sequence[RouteSpec], prefix: str) -> None:
        self._by_shape: dict[tuple[str, int], list[_Entry]] = {}
        for spec in specs:
            segments = f"{prefix}{spec.path}".split("/")
            fixed = tuple((i, s) for i, s in enumerate(segments) if not _is_param(s))
            params = tuple((i, s[1:-1]) for i, s in enumerate(segments) if _is_param(s))
            if any(":" in name for _, name in params):  # a converter: not one plain segment
                raise ValueError(f"{spec.path}: only plain {{name}} parameters are dispatched")
            shape = (spec.method, len(segments))
            self._by_shape.setdefault(shape, []).append(_Entry(spec, fixed, params))

    def match(self, method: str, path: str) -> tuple[RouteSpec, dict[str, str]] | None:
        segments = path.split("/")
        for entry in self._by_shape.get((method, len(segments)), ()):
            if all(segments[i] == literal for i, literal in entry.fixed) and all(
                segments[i] for i, _ in entry.params
            ):
                return entry.spec, {name: segments[i] for i, name in entry.params}
        return None


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
        await response(scope, receive, send)


def _is_param(segment: str) -> bool:
    return segment.startswith("{") and segment.endswith("}")
