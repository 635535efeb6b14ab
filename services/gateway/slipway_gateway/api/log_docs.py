"""The logs routes in the OpenAPI document: their query parameters, the page and line schemas,
the ``text/event-stream`` form of ``follow=true`` and the WebSocket that relays it.

The gateway forwards these routes without parsing their answers (``Gateway.handle`` takes the
raw request), so FastAPI cannot infer anything from the handler: what a client needs is written
here. The models mirror the logs service's public answers (``slipway_logs.api.schemas``; the
services import nothing of each other) and the bounds its routes check (``MAX_LIMIT`` …);
``tests/e2e/test_logs.py`` compares this document with the logs service's own, so a change on
one side without the other fails there.

OpenAPI has no WebSocket operation, and a path of its own would be an HTTP route (and a row of
every route matrix): the socket is described on the route it relays, as ``x-websocket``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from slipway_gateway.api.event_docs import event_stream_docs
from slipway_gateway.api.table import RouteSpec

MAX_LIMIT = 5000  # lines a page or a tail holds at most
DEFAULT_LIMIT = 500
MAX_QUERY_CHARS = 256
FOLLOW_DEFAULT_TAIL = 100
MAX_CURSOR = 2**63 - 1
REF = "#/components/schemas/"  # LogLine is there: LogPage, a response model, holds it


class LogLine(BaseModel):
    """One stored line (a line longer than 16 KiB is stored in parts and read back whole)."""

    cursor: int = Field(
        description="Strictly increasing within the stream: page, follow and resume by it."
    )
    at: datetime = Field(description="When the line was printed.")
    kind: Literal["build", "deploy", "live"] = Field(description="The step that printed it.")
    stream: Literal["stdout", "stderr", "system"]
    service_id: uuid.UUID | None
    build_id: uuid.UUID | None
    text: str


class LogPage(BaseModel):
    """Lines in cursor order and the cursors to page from."""

    items: list[LogLine]
    next_cursor: int | None = Field(description="Pass as `after` for the next page.")
    prev_cursor: int | None = Field(description="Pass as `before` for the previous page.")
    head_cursor: int = Field(
        description="The stream's newest cursor at the time of the read (0: no line yet)."
    )


class LogRetention(BaseModel):
    days: int | None = Field(
        description="The organization's own retention; null: the installation's."
    )
    default_days: int = Field(description="The installation's retention.")
    effective_days: int


class LogRetentionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    days: int | None = Field(
        ge=1,
        description="Fewer days than the installation keeps lines; "
        "null: as long as the installation.",
    )


class LogSkipped(BaseModel):
    """``event: skipped``: the follower's buffer overflowed; the lines are stored."""

    count: int
    from_cursor: int = Field(description="Read the missed lines with `after` = this.")
    to_cursor: int


class LogResume(BaseModel):
    """``event: resume``: the connection's lifetime is over; reconnect with ``Last-Event-ID``."""

    last_event_id: str
    after: int


class LogEnd(BaseModel):
    """``event: end``: the deployment has ended (deployments only); the stream closes."""

    status: str
    last_cursor: int


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


_CURSOR = {"type": "integer", "minimum": 0, "maximum": MAX_CURSOR}
_TIME = {"type": "string", "format": "date-time"}
PARAMETERS: list[dict[str, Any]] = [
    _query(
        "follow",
        {"type": "boolean", "default": False},
        "true: follow as Server-Sent Events (text/event-stream) instead of one page.",
    ),
    _query("since", _TIME, "Lines printed at or after this time (no offset: UTC)."),
    _query("until", _TIME, "Lines printed before this time (not with follow)."),
    _query(
        "stream",
        {"type": "string", "enum": ["stdout", "stderr", "system"]},
        "Only this output stream.",
    ),
    _query(
        "q",
        {"type": "string", "minLength": 1, "maxLength": MAX_QUERY_CHARS},
        "Text search: lines containing this text, case-insensitive.",
    ),
    _query(
        "tail",
        {"type": "integer", "minimum": 0, "maximum": MAX_LIMIT},
        f"The last N lines (read: 1 to {MAX_LIMIT}, not with after/before; follow: the lines "
        f"sent before the new ones, default {FOLLOW_DEFAULT_TAIL}).",
    ),
    _query(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
        "Lines a page holds (not with follow).",
    ),
    _query("after", _CURSOR, "Lines after this cursor (follow: resume after it)."),
    _query("before", _CURSOR, "Lines before this cursor (not with follow)."),
    {
        "name": "Last-Event-ID",
        "in": "header",
        "required": False,
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
        "description": "follow=true: resume after this cursor (an EventSource sends it).",
    },
]

_EVENTS = (
    "One event per line of the stream, then one per new line: `event: line` with `id:` its "
    "cursor and `data:` a LogLine; `event: skipped` (LogSkipped) when this follower's buffer "
    "overflowed; `event: resume` (LogResume) when the connection's lifetime is over; "
    "`event: end` (LogEnd) when a deployment has ended. Comments: `: following` once "
    "subscribed (every later line will come), `: heartbeat` every 15 s."
)
_EVENT_STREAM = {
    "description": _EVENTS,
    "schema": {"type": "string"},
    "itemSchema": {
        "type": "object",
        "properties": {
            "event": {"type": "string", "enum": ["line", "skipped", "resume", "end"]},
            "id": {"type": "string", "description": "line: its cursor"},
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": {
                    "oneOf": [
                        {"$ref": f"{REF}LogLine"},
                        *(m.model_json_schema() for m in (LogSkipped, LogResume, LogEnd)),
                    ]
                },
            },
        },
    },
}


def _websocket(path: str) -> dict[str, Any]:
    return {
        "path": f"{path}/ws",
        "description": (
            "The same follow over a WebSocket: one JSON text message per event, "
            '{"event": "line", "id": "<cursor>", "data": LogLine}, {"event": "skipped", '
            '"data": LogSkipped}, {"event": "heartbeat"}, {"event": "resume", …}, '
            '{"event": "end", …}; closed (1000) after resume or end. Query parameters: since, '
            "stream, q, tail, after (the resume), and token (a session's access token or an API "
            "token, for clients that cannot set Authorization). A refusal is "
            '{"event": "error", "error": {"code", "message"}}, then a close with 4000 + the '
            "HTTP status."
        ),
        "messages": {
            "line": {"$ref": f"{REF}LogLine"},
            "skipped": LogSkipped.model_json_schema(),
            "resume": LogResume.model_json_schema(),
            "end": LogEnd.model_json_schema(),
        },
    }


def _path_ids(spec: RouteSpec) -> list[dict[str, Any]]:
    names = [part[1:-1] for part in spec.path.split("/") if part.startswith("{")]
    return [
        {"name": n, "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
        for n in names
    ]


def _read(spec: RouteSpec) -> dict[str, Any]:
    return {
        "responses": {
            spec.success: {
                "model": LogPage,
                "description": "A page of lines (JSON), or with follow=true an event stream.",
                "content": {"text/event-stream": _EVENT_STREAM},
            }
        },
        "openapi_extra": {
            "parameters": _path_ids(spec) + PARAMETERS,
            "x-websocket": _websocket(f"/api/v1{spec.path}"),
        },
    }


def route_docs(spec: RouteSpec) -> dict[str, Any]:
    """Keyword arguments of ``add_api_route`` that document a logs route, or the event stream
    ({} for the others)."""
    if spec.upstream == "gateway":
        return event_stream_docs(spec)
    if spec.upstream != "logs":
        return {}
    if spec.path.endswith("/logs"):
        return _read(spec)
    if spec.path.endswith("/log-retention"):
        docs: dict[str, Any] = {
            "responses": {spec.success: {"model": LogRetention}},
            "openapi_extra": {"parameters": _path_ids(spec)},
        }
        if spec.method == "PUT":
            body = LogRetentionUpdate.model_json_schema()
            docs["openapi_extra"] = {
                "parameters": _path_ids(spec),
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": body}},
                },
            }
        return docs
    return {}
