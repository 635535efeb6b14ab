"""Read-your-writes across services: the state changes a request made, handed back with it.

A service answers a change with the changed state (the same payloads its events carry, see
``outbox.publish(..., announce=True)``), in the ``X-Slipway-Changes`` header; the gateway that
forwarded the request applies them to its projections at once, instead of waiting for the
events. Other gateways converge through the events as usual. A list too large for a header is
left to the events.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

CHANGES_HEADER = "x-slipway-changes"
MAX_HEADER_BYTES = 16_000

# set (to an empty list) by ``http.ChangesRoute`` for the duration of one request
collected: ContextVar[list[dict[str, Any]] | None] = ContextVar("slipway_changes", default=None)


def announce(event_type: str, data: dict[str, Any]) -> None:
    changes = collected.get()
    if changes is not None:
        changes.append({"type": event_type, "data": data})
