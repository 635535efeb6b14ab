"""The FastAPI app factory every service uses: error model, limits, health and readiness.

Errors always answer ``{"error": {"code": "STABLE_CODE", "message": "...", "details": ...}}``:
- ``BusinessError`` subclasses → their status and code;
- malformed JSON → 400 ``MALFORMED_JSON``; schema violations → 422 ``VALIDATION_ERROR`` with the
  failing field paths; unknown route → 404 ``NOT_FOUND``; wrong method → 405;
- bodies above the limit → 413 ``PAYLOAD_TOO_LARGE`` (checked while reading, not only the header);
- JSON nested deeper than ``max_json_depth`` → 400 ``JSON_TOO_DEEP``, a NUL in the query → 400
  ``INVALID_QUERY``, both before any route parses them;
- anything unexpected → 500 ``INTERNAL`` without a stack trace (the trace id is in the details,
  the exception in the log).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.telemetry import TelemetryConfig
from opentelemetry import context as otel_context
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from slipway_libs import changes
from slipway_libs.errors import BusinessError
from slipway_libs.json_nesting import MAX_DEPTH, check_nesting
from slipway_libs.logging import correlation_id
from slipway_libs.plain_routes import PlainRoutes
from slipway_libs.telemetry import current_ids, exporting, unrecorded_context

log = structlog.get_logger(__name__)

ReadinessCheck = Callable[[], Awaitable[Any]]

_STATUS_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "RATE_LIMITED",
}


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


class _ErrorJSON(JSONResponse):
    """ASCII-escaped: an error may echo a client's field name, and a lone surrogate in it could
    not be encoded as UTF-8 (the 422 would become a 500)."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode()


def error_response(
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return _ErrorJSON(
        error_body(code, message, details), status_code=status, headers=dict(headers or {})
    )


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {
            "path": ".".join(str(p) for p in err.get("loc", ()) if p != "body"),
            "type": err.get("type"),
            "message": err.get("msg"),
        }
        for err in exc.errors()
    ]


async def _on_validation(_: Request, exc: RequestValidationError) -> JSONResponse:
    details = _validation_details(exc)
    if any(d["type"] == "json_invalid" for d in details):
        return error_response(400, "MALFORMED_JSON", "The request body is not valid JSON.")
    return error_response(422, "VALIDATION_ERROR", "The request is invalid.", details)


def business_response(exc: BusinessError) -> JSONResponse:
    """The answer to a ``BusinessError``: its status, code, message, details and headers."""
    return error_response(exc.status_code, exc.code, exc.message, exc.details, exc.headers)


async def _on_business(_: Request, exc: BusinessError) -> JSONResponse:
    return business_response(exc)


def http_error_response(exc: StarletteHTTPException) -> JSONResponse:
    """The answer to Starlette's ``HTTPException`` (an unknown route, a wrong method...)."""
    code = _STATUS_CODES.get(exc.status_code, "HTTP_ERROR")
    message = exc.detail if isinstance(exc.detail, str) else code
    return error_response(exc.status_code, code, message, headers=exc.headers)


async def _on_http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    return http_error_response(exc)


async def _on_unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("http.unhandled", error=repr(exc))
    ids = current_ids()
    return error_response(
        500,
        "INTERNAL",
        "Internal error.",
        {"trace_id": ids[0]} if ids else None,
        # the client must not send another request on this connection: a server that
        # saw an unhandled error may drop it, and a pooled client would reuse it blindly
        headers={"connection": "close"},
    )


class UnexpectedErrorMiddleware:
    """Answers an unhandled error with the 500 error body and keeps it from the server.

    Starlette's own handler answers, then re-raises to the server, which closes the
    connection without a word: a gateway holding it in its pool then failed the *next*
    request, another caller's, with 503. Here the error ends with the answer.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            if started:  # too late for an answer: the server closes the connection
                raise
            response = await _on_unexpected(Request(scope), exc)
            await response(scope, receive, send)


class BodyLimitMiddleware:
    """Refuses request bodies above ``max_bytes`` whatever Content-Length claims."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self._refuse(scope, receive, send)
        seen = 0
        refused = False

        async def limited() -> Message:
            nonlocal seen, refused
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes and not refused:
                refused = True
                await self._refuse(scope, receive, send)
                return {"type": "http.disconnect"}  # the app stops reading; its answer is dropped
            return message

        async def guarded(message: Message) -> None:
            if not refused:
                await send(message)

        await self.app(scope, limited, guarded)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413, "PAYLOAD_TOO_LARGE", f"The request body exceeds {self.max_bytes} bytes."
        )
        await response(scope, receive, send)


class HostileInputMiddleware:
    """Refuses, before any route parses them, a JSON body nested deeper than ``max_depth`` (the
    parser and recursive code after it would raise ``RecursionError``) and a NUL in the query
    (PostgreSQL refuses it in text). Sits inside ``BodyLimitMiddleware``: what it buffers is
    bounded."""

    def __init__(self, app: ASGIApp, max_depth: int) -> None:
        self.app = app
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if b"%00" in scope.get("query_string", b""):
            response = error_response(400, "INVALID_QUERY", "The query has a NUL character.")
            return await response(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"0") != b"0" or b"transfer-encoding" in headers
        if not declared or b"json" not in headers.get(b"content-type", b"json"):
            return await self.app(scope, receive, send)  # no body (an SSE stream), or not JSON
        body = await _read_body(receive)
        if body is None:
            return None  # the client left, or the body limit has answered
        try:
            check_nesting(body, limit=self.max_depth)
        except BusinessError as exc:
            response = error_response(exc.status_code, exc.code, exc.message, exc.details)
            return await response(scope, receive, send)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # after the body: the disconnect, when it comes
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


class CorrelationMiddleware:
    """Binds ``X-Correlation-Id`` (or a new one) to the logs and outgoing events of a request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        raw = dict(scope.get("headers") or []).get(b"x-correlation-id", b"").decode()[:100]
        cid = raw or str(uuid.uuid4())
        token = correlation_id.set(cid)
        structlog.contextvars.bind_contextvars(correlation_id=cid)

        async def with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append((b"x-correlation-id", cid.encode()))
            await send(message)

        try:
            await self.app(scope, receive, with_header)
        finally:
            structlog.contextvars.unbind_contextvars("correlation_id")
            correlation_id.reset(token)


class TraceContextMiddleware:
    """The trace context of a request whose spans go nowhere (``telemetry.exporting()`` false):
    the caller's trace continued, or a new one, without the OpenTelemetry middleware's span."""

    _CARRIED = frozenset({b"traceparent", b"tracestate", b"baggage"})

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        carrier = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope.get("headers") or ()
            if name in self._CARRIED
        }
        token = otel_context.attach(unrecorded_context(carrier))
        try:
            await self.app(scope, receive, send)
        finally:
            otel_context.detach(token)


async def run_checks(
    checks: Mapping[str, ReadinessCheck], timeout_s: float = 3.0
) -> tuple[bool, dict[str, Any]]:
    async def one(check: ReadinessCheck) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            detail = await asyncio.wait_for(check(), timeout_s)
        except Exception as exc:
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
        out: dict[str, Any] = {
            "ok": True,
            "latency_ms": round((time.perf_counter() - started) * 1000, 1),
        }
        if isinstance(detail, dict):
            out.update(detail)
        return out

    names = list(checks)
    results = await asyncio.gather(*(one(checks[n]) for n in names))
    report = dict(zip(names, results, strict=True))
    return all(r["ok"] for r in results), report


_NO_FASTAPI_TELEMETRY: TelemetryConfig = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
}


def create_app(
    *,
    service: str,
    routers: Sequence[APIRouter] = (),
    readiness: Mapping[str, ReadinessCheck] | None = None,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
    max_body_bytes: int = 1024 * 1024,
    max_json_depth: int = MAX_DEPTH,
    inner: Sequence[Middleware] = (),
    instance: str = "",
    plain_routes: bool = True,
    **fastapi_kwargs: Any,
) -> FastAPI:
    """The service's app. ``inner``: ASGI layers between the service's own middlewares (which
    see every request) and FastAPI's router, the first the innermost (the gateway's table
    dispatch). ``instance``: the process's name, answered by ``/healthz`` and ``/readyz``.
    ``plain_routes``: GET routes that need no more of FastAPI than their ids parsed are
    answered ahead of its router (``slipway_libs.plain_routes``); off only to compare."""
    fastapi_kwargs.setdefault("title", f"slipway-{service}")
    # no redirect from `…/x/` to `…/x`: an answer to a malformed path is its 404 or 422, never
    # a Location built from what the client sent (`…/%2e%2e%2f` redirected to `…/..`)
    fastapi_kwargs.setdefault("redirect_slashes", False)
    traced = exporting()
    if not traced:
        # FastAPI's own telemetry opens a server span and spans per dependency, endpoint and
        # serialization once a tracer provider is installed, exported or not
        fastapi_kwargs.setdefault("telemetry", _NO_FASTAPI_TELEMETRY)
    app = FastAPI(lifespan=lifespan, **fastapi_kwargs)
    app.add_exception_handler(RequestValidationError, _on_validation)  # type: ignore[arg-type]
    app.add_exception_handler(BusinessError, _on_business)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _on_http)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _on_unexpected)
    # app-wide dependencies or a default response class: FastAPI applies them, so it answers
    if (
        plain_routes
        and not app.router.dependencies
        and "default_response_class" not in fastapi_kwargs
    ):

        def tried_in_order() -> list[BaseRoute]:
            # FastAPI keeps an included router whole (its routes tried in their order, where it
            # was included): the app's own routes, then each router's
            own = app.router.routes[:own_routes]
            return [*own, *(route for router in routers for route in router.routes)]

        app.add_middleware(
            PlainRoutes,
            routes=tried_in_order,
            wraps={ChangesRoute: with_changes},
            handlers=app.exception_handlers,
            overrides=app.dependency_overrides,
        )
    for layer in inner:
        app.add_middleware(layer.cls, *layer.args, **layer.kwargs)
    app.add_middleware(HostileInputMiddleware, max_depth=max_json_depth)  # inside the limit
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes)
    app.add_middleware(CorrelationMiddleware)
    app.add_middleware(UnexpectedErrorMiddleware)  # outermost of ours: sees every error
    checks = dict(readiness or {})
    named = {"instance": instance} if instance else {}

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": service, **named}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        ok, report = await run_checks(checks)
        status = "ready" if ok else "not_ready"
        return JSONResponse(
            {"status": status, "service": service, **named, "checks": report},
            status_code=200 if ok else 503,
        )

    own_routes = len(app.router.routes)  # FastAPI's documents, /healthz and /readyz
    for router in routers:
        app.include_router(router)
    if not traced:
        app.add_middleware(TraceContextMiddleware)  # outermost: logs of every layer carry it
        return app
    # one server span per request; not one more per ASGI message received and sent (two or
    # three per request, each a span to build and end on every request, exported or not)
    FastAPIInstrumentor.instrument_app(
        app, excluded_urls="healthz,readyz", exclude_spans=["receive", "send"]
    )
    return app


class ChangesRoute(APIRoute):
    """An ``APIRoute`` whose answers carry the changes announced during the call and the
    catalog revisions its writes reached (see ``slipway_libs.changes``)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handler(request: Request) -> Response:
            return await with_changes(lambda: handle(request))

        return handler


async def with_changes(handle: Callable[[], Awaitable[Response]]) -> Response:
    """``handle``'s answer with the changes it announced and the revisions it reached."""
    announced: list[dict[str, Any]] = []
    revisions: dict[uuid.UUID, int] = {}
    token = changes.collected.set(announced)
    noted = changes.reached.set(revisions)
    try:
        response = await handle()
    finally:
        changes.collected.reset(token)
        changes.reached.reset(noted)
    if revisions and response.status_code < 400:
        response.headers[changes.REVISION_HEADER] = changes.format_revisions(revisions)
    encoded = json.dumps(announced, separators=(",", ":"))
    if announced and response.status_code < 400 and (len(encoded) <= changes.MAX_HEADER_BYTES):
        response.headers[changes.CHANGES_HEADER] = encoded
    return response
