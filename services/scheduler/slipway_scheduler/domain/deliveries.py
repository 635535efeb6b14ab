"""What an outgoing webhook delivers: which deployer event becomes which webhook event, the
body a receiver gets (plain JSON or Slack's ``{"text": ...}``), and how an attempt's answer is
judged. Pure: no I/O.

- A deployment's progress is ``deployment.queued | started | succeeded | failed | canceled``
  whatever its action (deploy, restart, stop, delete: the body says which), except that a stop
  that succeeded is ``environment.stopped``.
- The body is fixed when the delivery is written: every attempt (and a redeliver) sends the
  same bytes, with the event's id, so that a receiver can recognise a repeat. Only the
  signature's timestamp changes from one attempt to the next.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from slipway_scheduler.domain.webhooks import Format


class DeliveryStatus(StrEnum):
    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"  # given up: retried for the whole window, or the webhook is unusable


# the deployer's deployment events, by the step of a deployment they report
STEPS = ("queued", "started", "succeeded", "failed", "canceled")


def webhook_event(step: str, action: str) -> str:
    """The webhook event a deployment's ``step`` is, for a deployment of ``action``."""
    if step == "succeeded" and action == "STOP":
        return "environment.stopped"
    return f"deployment.{step}"


@dataclass(frozen=True, kw_only=True)
class Occurrence:
    """One deployer event as the webhooks see it: what happened, where, with what details."""

    event: str
    event_id: uuid.UUID
    occurred_at: datetime
    organization_id: uuid.UUID
    deployment_id: uuid.UUID
    environment_id: uuid.UUID
    action: str
    project_id: uuid.UUID | None = None
    project_name: str | None = None
    environment_name: str | None = None
    environment_mode: str | None = None
    # what the step says besides: trigger, reason, message, duration_s (when it says them)
    details: dict[str, Any] = field(default_factory=dict)


def render(kind: Format, occurrence: Occurrence) -> str:
    """The body of every attempt of this delivery (compact JSON, keys sorted)."""
    document = slack_body(occurrence) if kind is Format.SLACK else json_body(occurrence)
    return json.dumps(document, separators=(",", ":"), sort_keys=True)


def json_body(occurrence: Occurrence) -> dict[str, Any]:
    return {
        "id": str(occurrence.event_id),
        "type": occurrence.event,
        "occurred_at": occurrence.occurred_at.isoformat(),
        "organization_id": str(occurrence.organization_id),
        "data": {
            "deployment_id": str(occurrence.deployment_id),
            "action": occurrence.action,
            "environment": {
                "id": str(occurrence.environment_id),
                "name": occurrence.environment_name,
                "mode": occurrence.environment_mode,
            },
            "project": {
                "id": None if occurrence.project_id is None else str(occurrence.project_id),
                "name": occurrence.project_name,
            },
            **occurrence.details,
        },
    }


_SLACK_VERBS = {
    "deployment.queued": "queued",
    "deployment.started": "started",
    "deployment.succeeded": "succeeded",
    "deployment.failed": "failed",
    "deployment.canceled": "was canceled",
}


def slack_body(occurrence: Occurrence) -> dict[str, Any]:
    """A Slack incoming webhook's message: one line a person reads."""
    where = "/".join(
        name for name in (occurrence.project_name, occurrence.environment_name) if name is not None
    ) or str(occurrence.environment_id)
    if occurrence.event == "environment.stopped":
        text = f"Environment {where} stopped"
    else:
        verb = _SLACK_VERBS.get(occurrence.event, occurrence.event)
        text = f"{occurrence.action.capitalize()} of {where} {verb}"
    extra = [
        f"{occurrence.details['duration_s']:.1f} s" if "duration_s" in occurrence.details else "",
        str(occurrence.details.get("reason") or ""),
        str(occurrence.details.get("message") or ""),
    ]
    said = ", ".join(part for part in extra if part)
    return {"text": f"{text} ({said})" if said else text}


def succeeded(response_code: int | None) -> bool:
    """A 2xx answer is a delivery; anything else (a redirect too: never followed, as its
    target was not checked) is a failed attempt."""
    return response_code is not None and 200 <= response_code < 300


@dataclass(frozen=True)
class AttemptResult:
    """How one attempt went: the answer's code and start, or why there was none."""

    response_code: int | None
    duration_ms: int
    response_body: str | None = None
    error: str | None = None
    # no later attempt can do better (the secret cannot be opened): given up at once
    permanent: bool = False

    @property
    def succeeded(self) -> bool:
        return self.error is None and succeeded(self.response_code)
