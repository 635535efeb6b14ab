"""Following logs over a WebSocket: ``/api/v1/{deployments|services}/{id}/logs/ws`` relays the
same stream as ``…/logs?follow=true``, one JSON text message per event:
``{"event": "line", "id": "<cursor>", "data": {...}}``, ``{"event": "skipped", "data": {...}}``,
``{"event": "heartbeat"}``, ``{"event": "resume", ...}``, ``{"event": "end", ...}``; the server
closes the socket (1000) after ``resume`` or ``end``.

Credentials: the ``Authorization`` header, as on every route; browsers cannot set it on a
WebSocket, so a ``token`` query parameter may carry a session's access token or an API token
instead (never forwarded upstream). Query parameters are the follow's (``tail``, ``stream``,
``q``, ``since``, ``after``; ``after`` is the resume, as ``Last-Event-ID`` is for SSE).

A refusal (401, 403, 404 for another tenant's id, 422 …) is sent before any stream opens, as
``{"event": "error", "error": {"code", "message"}}``, then the socket is closed with
``4000 + the HTTP status`` and the code as the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

import structlog
from fastapi import APIRouter
from starlette.websockets import WebSocket, WebSocketDisconnect

from slipway_gateway.api.routes import PREFIX, Gateway
from slipway_gateway.api.table import LOGS_ROUTES, RouteSpec
from slipway_libs.errors import BusinessError

log = structlog.get_logger(__name__)

_NOT_FORWARDED = ("token",)
_LAST_EVENTS = ("resume", "end")


def log_socket_router(gateway: Gateway) -> APIRouter:
    router = APIRouter(prefix=PREFIX)
    for spec in LOGS_ROUTES:
        if spec.method == "GET" and spec.path.endswith("/logs"):
            router.add_api_websocket_route(f"{spec.path}/ws", _handler(gateway, spec))
    return router


def _handler(gateway: Gateway, spec: RouteSpec) -> Callable[[WebSocket], Coroutine[Any, Any, None]]:
    async def follow(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            actor, path = await gateway.authorize_stream(spec, websocket, _authorization(websocket))
            params = {k: v for k, v in websocket.query_params.items() if k not in _NOT_FORWARDED}
            events = gateway.streams.events(
                websocket, service="logs", path=path, actor=actor, params=params
            )
            await _relay(websocket, events)
        except BusinessError as exc:
            await _refuse(websocket, exc)

    return follow


def _authorization(websocket: WebSocket) -> str | None:
    header = websocket.headers.get("authorization")
    token = websocket.query_params.get("token")
    if header or not token:
        return header
    # a session's access token is a JWT (three dot-separated parts); anything else an API token
    return f"Bearer {token}" if token.count(".") == 2 else f"Token {token}"


async def _relay(websocket: WebSocket, events: Any) -> None:
    """Events to the socket until the stream ends or the client leaves (then the upstream
    stream is closed with the relay)."""

    async def send_all() -> None:
        async for event in events:
            await websocket.send_json(event)
            if event["event"] in _LAST_EVENTS:
                return

    relay = asyncio.create_task(send_all())
    left = asyncio.create_task(_until_closed(websocket))
    try:
        done, _ = await asyncio.wait({relay, left}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (relay, left):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
                await task
    if relay in done:
        relay.result()  # a refusal before the first event raises here
        with contextlib.suppress(RuntimeError):
            await websocket.close(1000)


async def _until_closed(websocket: WebSocket) -> None:
    """Returns when the client closes (the messages it sends are ignored)."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return


async def _refuse(websocket: WebSocket, exc: BusinessError) -> None:
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):
        await websocket.send_json(
            {"event": "error", "error": {"code": exc.code, "message": exc.message}}
        )
        await websocket.close(code=4000 + exc.status_code, reason=exc.code)
