"""The organization's event stream in the OpenAPI document: its parameters and the
``text/event-stream`` answer, written out because the gateway serves it itself (there is no
service document to take it from). The models mirror what ``org_events`` sends."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from slipway_gateway.api.table import RouteSpec

EVENT_TYPES = (
    "deployer.DeploymentQueued",
    "deployer.DeploymentStarted",
    "deployer.DeploymentStageChanged",
    "deployer.ServiceStatusChanged",
    "deployer.DeploymentSucceeded",
    "deployer.DeploymentFailed",
    "deployer.DeploymentCanceled",
    "deployer.JobRunFinished",
)


class OrganizationEvent(BaseModel):
    """One deployment or status event (``data``: the payload, as in the AsyncAPI document of
    ``deployer.deployment.v1``)."""

    id: uuid.UUID = Field(description="The event's own id (not the resume position).")
    type: str = Field(description="`deployer.DeploymentQueued`, …; also the SSE `event:` name.")
    occurred_at: datetime
    organization_id: uuid.UUID
    project_id: uuid.UUID | None
    environment_id: uuid.UUID
    deployment_id: uuid.UUID | None = Field(description="None for a job run's end.")
    data: dict[str, Any]


class StreamEnd(BaseModel):
    """``event: end``: the stream closes."""

    reason: Literal["caught_up", "access_lost"]


class StreamResume(BaseModel):
    """``event: resume``: the connection's lifetime is over; reconnect with Last-Event-ID."""

    last_event_id: str


class StreamGap(BaseModel):
    """``event: gap``: records the resume asked for are older than the topic keeps."""

    lost: int


_POSITION = {"type": "string", "pattern": "^[0-9]+(-[0-9]+)*$"}
PARAMETERS: list[dict[str, Any]] = [
    {
        "name": "follow",
        "in": "query",
        "required": False,
        "schema": {"type": "boolean", "default": True},
        "description": "false: send the events after the resume position that are already "
        "there, then `end` (caught_up).",
    },
    {
        "name": "after",
        "in": "query",
        "required": False,
        "schema": _POSITION,
        "description": "Resume after this event id (as Last-Event-ID, for clients that cannot "
        "set headers).",
    },
    {
        "name": "Last-Event-ID",
        "in": "header",
        "required": False,
        "schema": _POSITION,
        "description": "Resume after this event id: nothing missed, nothing repeated, also "
        "after a gateway restart (within the topic's 7-day retention).",
    },
]

_DESCRIPTION = (
    "The organization's deployment and status events, as Server-Sent Events, filtered for the "
    "caller: only environments its role (or custom role, per project and environment mode) may "
    "read, never another organization's. `: following` (a comment) once subscribed; then one "
    "event per deployment or status event: `event:` its type, `id:` the resume position, "
    "`data:` an OrganizationEvent. `event: gap` (StreamGap), `event: resume` (StreamResume) "
    "when the connection's lifetime (15 min) is over, `event: end` (StreamEnd); "
    "`: heartbeat` after 15 s of silence. Counts among the caller's follows "
    "(429 TOO_MANY_FOLLOWS)."
)


def _stream() -> dict[str, Any]:
    schemas = [m.model_json_schema() for m in (StreamGap, StreamResume, StreamEnd)]
    return {
        "description": _DESCRIPTION,
        "content": {
            "text/event-stream": {
                "schema": {"type": "string"},
                "itemSchema": {
                    "type": "object",
                    "properties": {
                        "event": {"type": "string", "enum": [*EVENT_TYPES, "gap", "resume", "end"]},
                        "id": _POSITION,
                        "data": {
                            "type": "string",
                            "contentMediaType": "application/json",
                            "contentSchema": {
                                "oneOf": [OrganizationEvent.model_json_schema(), *schemas]
                            },
                        },
                    },
                },
            }
        },
    }


_ORG = {
    "name": "org",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "format": "uuid"},
}


def event_stream_docs(spec: RouteSpec) -> dict[str, Any]:
    """Keyword arguments of ``add_api_route`` that document the stream ({} for other routes)."""
    if spec.upstream != "gateway":
        return {}
    return {
        "responses": {spec.success: _stream()},
        "openapi_extra": {"parameters": [_ORG, *PARAMETERS]},
    }
