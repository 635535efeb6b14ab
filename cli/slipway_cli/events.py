"""The organization's live event stream (``GET /organizations/{org}/events``, Server-Sent
Events), as the CLI reads it: ``slipway events`` tails it, ``--watch`` follows one deployment
with it.

``follow`` keeps going on its own: after a ``resume`` event (the connection's lifetime is over)
or a dropped connection it reconnects with ``Last-Event-ID``, so nothing is missed or repeated.
``on_following`` is called each time the stream says it is subscribed (``: following``): every
event from then on will come, which is how ``--watch`` knows it can read the deployment once and
leave the rest to the stream.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from slipway_cli import sse
from slipway_cli.client import ApiError, auth_headers
from slipway_cli.contexts import api_url

_RECONNECTS = 5  # in a row, without an event in between
TERMINAL = {
    "deployer.DeploymentSucceeded": "SUCCESS",
    "deployer.DeploymentFailed": "ERROR",
    "deployer.DeploymentCanceled": "CANCELED",
}


@dataclass(frozen=True)
class Event:
    type: str
    id: str | None
    data: dict[str, Any]


def follow(
    org: str,
    *,
    last_event_id: str | None = None,
    until_caught_up: bool = False,
    on_following: Callable[[], None] = lambda: None,
    note: Callable[[str], None] = lambda text: None,
) -> Iterator[Event]:
    """The organization's events the caller may see, as they come (``until_caught_up``: the
    ones already there after ``last_event_id``, then the end). Gaps are said with ``note``."""
    last, failures = last_event_id, 0
    while True:
        headers = auth_headers() | ({"last-event-id": last} if last else {})
        try:
            for event in _connection(org, headers, until_caught_up, on_following):
                failures = 0
                if event.type == "end":
                    if event.data.get("reason") == "access_lost":
                        raise ApiError(403, "ACCESS_LOST", "your access to the organization ended")
                    return
                if event.type == "gap":
                    note(f"{event.data.get('lost')} events are older than the platform keeps")
                    continue
                last = event.id or last
                if event.type == "resume":
                    break
                yield event
        except httpx.TransportError as exc:
            failures += 1
            if failures > _RECONNECTS:
                raise ApiError(0, "UNREACHABLE", f"lost {api_url()}: {exc}") from None
            note(f"connection lost ({exc.__class__.__name__}); reconnecting")
            time.sleep(min(2.0, 0.2 * 2**failures))


def _connection(
    org: str, headers: dict[str, str], until_caught_up: bool, on_following: Callable[[], None]
) -> Iterator[Event]:
    timeout = httpx.Timeout(30, read=90)  # heartbeats come every 15 s: a silence is a loss
    url = f"{api_url()}/api/v1/organizations/{org}/events"
    params = {"follow": "false"} if until_caught_up else {}
    with httpx.stream("GET", url, params=params, headers=headers, timeout=timeout) as response:
        sse.raise_for_error(response)
        for name, data, event_id in sse.events(response, _comment(on_following)):
            yield Event(name, event_id, data)


def _comment(on_following: Callable[[], None]) -> Callable[[str], None]:
    def seen(comment: str) -> None:
        if comment == "following":
            on_following()

    return seen


def describe(event: Event, names: dict[str, str] | None = None) -> str:
    """One line for a person: what happened, to what."""
    data, kind = event.data.get("data", {}), event.type.removeprefix("deployer.")
    names = names or {}
    if kind == "DeploymentStageChanged":
        return f"stage {data.get('stage_name')}: {data.get('status')}"
    if kind == "ServiceStatusChanged":
        service = str(data.get("service_id", ""))
        text = f"  {names.get(service, service[:8])}: {data.get('state')}"
        if data.get("running_status"):
            text += f" ({data['running_status']})"
        return text + (f" — {data['message']}" if data.get("message") else "")
    if kind == "DeploymentFailed":
        return f"deployment ERROR ({data.get('reason')}: {data.get('message')})"
    if kind == "JobRunFinished":
        return f"job run {data.get('run_id')}: {data.get('status')}"
    status = TERMINAL.get(event.type) or {
        "DeploymentQueued": "QUEUED",
        "DeploymentStarted": "ONGOING",
    }.get(kind, kind)
    return f"deployment {status}"
