"""GET routes answered ahead of FastAPI's router when FastAPI would only parse ids.

An internal read (identity's ``GET /organizations/{org_id}``: one ``SELECT``) spent about a third
of its CPU in FastAPI around the endpoint: a regular expression per route tried in turn, the
dependency solver, exit stacks, exception wrappers. A route qualifies here when its endpoint is
a coroutine taking only path parameters (a UUID, a string, an integer) and maybe the request;
its dependencies are request-only coroutines named by the router or the route (the internal
caller's check, the tenant binding); and no response, background task nor security scope is
asked for. Such a route is answered here with the same steps in the same order: the
dependencies run one after the other, the endpoint is called, its value is encoded by FastAPI's
own ``serialize_response`` (through the response model when there is one) into the route's
response class and status. Errors are answered as the app's handlers answer them; anything
unexpected goes on up to ``UnexpectedErrorMiddleware``, as from the router.

What goes on to FastAPI's router, which keeps every route: other methods, a path no qualifying
route matches first (the index holds every route in the router's order, so one that would be
picked before a qualifying one still is), an id not in its plain form (FastAPI answers the 422
it always answered), and every route after one the index cannot place (a ``Mount``, a
``{name:path}`` converter): those are never answered here.
"""

from __future__ import annotations

import inspect
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi.datastructures import DefaultPlaceholder
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, serialize_response
from fastapi.utils import is_body_allowed_for_status_code
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from slipway_libs.route_index import RouteIndex

# what a path segment must look like to be parsed here; any other form goes to FastAPI
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_INT = re.compile(r"-?[0-9]{1,18}")
_PARSERS: dict[Any, Callable[[str], Any]] = {
    uuid.UUID: lambda text: uuid.UUID(text) if _UUID.fullmatch(text) else None,
    int: lambda text: int(text) if _INT.fullmatch(text) else None,
    str: lambda text: text,
}

# the route's response_model_* settings, as FastAPI hands them to serialize_response
_MODEL_OPTIONS = (
    "include",
    "exclude",
    "by_alias",
    "exclude_unset",
    "exclude_defaults",
    "exclude_none",
)
Wrap = Callable[[Callable[[], Awaitable[Response]]], Awaitable[Response]]


@dataclass(frozen=True)
class _Plain:
    route: APIRoute
    parsers: tuple[tuple[str, Callable[[str], Any]], ...]
    checks: tuple[Callable[[Request], Awaitable[Any]], ...]
    endpoint: Callable[..., Awaitable[Any]]
    request_name: str | None
    wrap: Wrap | None  # the route class's own wrapping of its handler (``ChangesRoute``)

    def parse(self, raw: dict[str, str]) -> dict[str, Any] | None:
        values = {}
        for name, parser in self.parsers:
            value = parser(raw[name])
            if value is None:
                return None
            values[name] = value
        return values

    async def answer(self, request: Request, values: dict[str, Any]) -> Response:
        if self.wrap is None:
            return await self._answer(request, values)
        return await self.wrap(lambda: self._answer(request, values))

    async def _answer(self, request: Request, values: dict[str, Any]) -> Response:
        for check in self.checks:
            await check(request)
        if self.request_name is not None:
            values[self.request_name] = request
        raw = await self.endpoint(**values)
        return raw if isinstance(raw, Response) else await self._encoded(raw)

    async def _encoded(self, raw: Any) -> Response:
        route = self.route
        default_class = isinstance(route.response_class, DefaultPlaceholder)
        field = route.response_field
        options = {name: getattr(route, f"response_model_{name}") for name in _MODEL_OPTIONS}
        dump_json = field is not None and default_class
        content = await serialize_response(
            field=field, response_content=raw, is_coroutine=True, dump_json=dump_json, **options
        )
        if field is not None and default_class:
            response = _made(Response, route.status_code, content, media_type="application/json")
        else:
            response_class = route.response_class
            if isinstance(response_class, DefaultPlaceholder):
                response_class = response_class.value
            response = _made(response_class, route.status_code, content)
        if not is_body_allowed_for_status_code(response.status_code):
            response.body = b""  # as FastAPI does (its content-length too)
        return response


class PlainRoutes:
    """ASGI: a GET that a qualifying route would answer is answered here; everything else goes
    to the app behind. ``routes``: the routes in the order the app's router tries them, asked
    for when the first request comes (all are included by then); ``wraps``: route classes
    whose handler wrapping is known, and how to apply it (a route of another custom class does
    not qualify); ``handlers``: the app's exception handlers, looked up as Starlette does (by
    the error's class and its bases; the one for ``Exception`` left to the layers above, as
    from the router); ``overrides``: the app's dependency overrides — while any is set
    (tests), every request goes to FastAPI, which applies them. The index is built once, at
    the first request: a route added to a router after that is FastAPI's."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: Callable[[], Sequence[BaseRoute]],
        wraps: dict[type, Wrap | None],
        handlers: Mapping[Any, Callable[..., Any]],
        overrides: Mapping[Any, Any],
    ) -> None:
        self.app = app
        self._routes = routes
        self._wraps: dict[type, Wrap | None] = {APIRoute: None, **wraps}
        self._handlers = handlers
        self._overrides = overrides
        self._index: RouteIndex[_Plain | None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or scope.get("root_path"):
            return await self.app(scope, receive, send)
        if self._overrides:
            return await self.app(scope, receive, send)
        if self._index is None:
            self._index = self.index()
        found = self._index.match("GET", scope["path"])
        plain, raw = found if found is not None else (None, {})
        values = plain.parse(raw) if plain is not None else None
        if plain is None or values is None:
            return await self.app(scope, receive, send)
        scope["path_params"] = raw
        request = Request(scope, receive)
        try:
            response = await plain.answer(request, values)
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                raise
            answered = handler(request, exc)
            response = await answered if inspect.isawaitable(answered) else answered
        await response(scope, receive, send)

    def _handler(self, exc: Exception) -> Callable[..., Any] | None:
        for kind in type(exc).__mro__:
            if kind is Exception:
                return None  # the 500: answered above, as when the router raises
            if kind in self._handlers:
                return self._handlers[kind]
        return None

    def index(self) -> RouteIndex[_Plain | None]:
        """Every route up to the first the index cannot place, in the router's order."""
        placed: list[tuple[str, str, _Plain | None]] = []
        for route in self._routes():
            if isinstance(route, WebSocketRoute):
                continue  # never matches an http request
            if not isinstance(route, Route) or ":" in route.path or route.methods is None:
                break  # a Mount, a converter, any method: what follows may be shadowed
            plain = self._plain(route) if isinstance(route, APIRoute) else None
            placed += [(method, route.path, plain) for method in route.methods or ()]
        return RouteIndex(placed)

    def _plain(self, route: APIRoute) -> _Plain | None:
        if type(route) not in self._wraps or "GET" not in (route.methods or ()):
            return None
        dependant = route.dependant
        parsers = _path_parsers(dependant)
        checks = [_request_check(dependency) for dependency in dependant.dependencies]
        if parsers is None or None in checks or not _only_path_and_request(dependant):
            return None
        calls = [dependency.call for dependency in dependant.dependencies]
        if len(set(calls)) != len(calls):
            return None  # FastAPI runs a dependency named twice once (its cache): not here
        if not inspect.iscoroutinefunction(dependant.call):
            return None
        return _Plain(
            route=route,
            parsers=parsers,
            checks=tuple(check for check in checks if check is not None),
            endpoint=dependant.call,
            request_name=dependant.request_param_name,
            wrap=self._wraps[type(route)],
        )


def _made(
    response_class: type[Response], status_code: int | None, content: Any, **more: Any
) -> Response:
    """The route's status when it names one, else the class's own (FastAPI's rule)."""
    if status_code:
        return response_class(content, status_code=status_code, **more)
    return response_class(content, **more)


def _path_parsers(dependant: Dependant) -> tuple[tuple[str, Callable[[str], Any]], ...] | None:
    parsers = []
    for field in dependant.path_params:
        info = field.field_info
        parser = _PARSERS.get(info.annotation)
        if parser is None or info.metadata or field.alias != field.name:
            return None  # a constraint, an alias or another type: FastAPI's to check
        parsers.append((field.name, parser))
    return tuple(parsers)


def _only_path_and_request(dependant: Dependant) -> bool:
    return not (
        dependant.query_params
        or dependant.header_params
        or dependant.cookie_params
        or dependant.body_params
        or dependant.response_param_name
        or dependant.background_tasks_param_name
        or dependant.websocket_param_name
        or dependant.http_connection_param_name
        or dependant.security_scopes_param_name
    )


def _request_check(dependency: Dependant) -> Callable[[Request], Awaitable[Any]] | None:
    """A dependency that is a coroutine of the request alone, whose value nothing takes."""
    call = dependency.call
    plain = (
        dependency.name is None
        and call is not None
        and inspect.iscoroutinefunction(call)
        and dependency.request_param_name is not None
        and not dependency.dependencies
        and not dependency.path_params
        and _only_path_and_request(dependency)
        and not dependency.own_oauth_scopes
    )
    name = dependency.request_param_name
    if not plain or call is None or name is None:
        return None

    async def check(request: Request) -> Any:
        return await call(**{name: request})

    return check
