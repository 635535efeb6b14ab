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

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Protocol

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from slipway_gateway.api.table import RouteSpec
from slipway_libs.errors import BusinessError
from slipway_libs.http import business_response, http_error_response


class Handles(Protocol):
    async def handle(self, spec: RouteSpec, request: Request) -> Response: ...


@dataclass(frozen=True)
class _Entry:
    spec: RouteSpec
    # the fixed segments (the prefix's at least: two or more) and what they must be
    fixed: Callable[[list[str]], tuple[str, ...]]
    literals: tuple[str, ...]
    names: tuple[str, ...]  # the parameters, in the path's order
    values: Callable[[list[str]], tuple[str, ...]]

    @classmethod
    def of(cls, spec: RouteSpec, segments: list[str]) -> _Entry:
        fixed = [i for i, s in enumerate(segments) if not _is_param(s)]
        params = [i for i, s in enumerate(segments) if _is_param(s)]
        names = tuple(segments[i][1:-1] for i in params)
        if any(":" in name for name in names):  # a converter: not one plain segment
            raise ValueError(f"{spec.path}: only plain {{name}} parameters are dispatched")
        return cls(spec, _pick(fixed), tuple(segments[i] for i in fixed), names, _pick(params))


class RouteIndex:
    """The routes of a table by (method, number of segments), each list in the table's order:
    a path matches what Starlette's ``{name}`` (one non-empty segment) would match."""

    def __init__(self, specs: Sequence[RouteSpec], prefix: str) -> None:
        self._by_shape: dict[tuple[str, int], list[_Entry]] = {}
        if not prefix.startswith("/") or prefix.count("/") < 2:
            raise ValueError("the prefix has two segments or more (/api/v1)")
        for spec in specs:
            segments = f"{prefix}{spec.path}".split("/")
            shape = (spec.method, len(segments))
            self._by_shape.setdefault(shape, []).append(_Entry.of(spec, segments))

    def match(self, method: str, path: str) -> tuple[RouteSpec, dict[str, str]] | None:
        segments = path.split("/")
        for entry in self._by_shape.get((method, len(segments)), ()):
            if entry.fixed(segments) == entry.literals:
                values = entry.values(segments)
                if "" not in values:  # a parameter is one non-empty segment
                    return entry.spec, dict(zip(entry.names, values, strict=True))
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
        except HTTPException as exc:  # Starlette's own (none raised today): its status, not 500
            response = http_error_response(exc)
        await response(scope, receive, send)


def _pick(indices: list[int]) -> Callable[[list[str]], tuple[str, ...]]:
    """The segments at ``indices`` as a tuple, picked in C (``itemgetter``: this runs for every
    request and candidate route; ``itemgetter`` of one index gives the item, not a tuple)."""
    if len(indices) == 1:
        (only,) = indices
        return lambda segments: (segments[only],)
    if not indices:
        return lambda _: ()
    return itemgetter(*indices)


def _is_param(segment: str) -> bool:
    return segment.startswith("{") and segment.endswith("}")
