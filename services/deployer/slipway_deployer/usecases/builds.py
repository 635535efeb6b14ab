"""The builder's events, as they concern deployments: each updates the service run that asked
for the build (found by build id) and wakes the execution waiting on it. Events of builds that
no deployment asked for (another installation's, or a deleted deployment's) change nothing."""

from __future__ import annotations

import asyncpg

from slipway_contracts import REGISTRY, Envelope
from slipway_contracts.events import builder as ev
from slipway_deployer.db import queries as q
from slipway_deployer.usecases.execution import BUILD_CHANNEL

_ORDER = {"REQUESTED": 0, "QUEUED": 1, "STARTED": 2, "SUCCEEDED": 3, "FAILED": 3, "CANCELED": 3}


async def on_build_event(conn: asyncpg.Connection, envelope: Envelope) -> None:
    event = REGISTRY.parse(envelope)
    assert isinstance(event, ev._BuildEvent)
    current = await q.lock_build(conn, event.build_id)
    if current is None:
        return
    status, fields = _outcome(event)
    if _ORDER.get(current.build_status or "REQUESTED", 0) >= _ORDER[status]:
        return  # an older event delivered late: the newer outcome stands
    await q.record_build(conn, event.build_id, build_status=status, **fields)
    await q.notify(conn, BUILD_CHANNEL, str(event.build_id))


def _outcome(event: ev._BuildEvent) -> tuple[str, dict[str, object]]:
    if isinstance(event, ev.BuildSucceeded):
        return "SUCCEEDED", {"image": event.image, "commit": event.commit}
    if isinstance(event, ev.BuildFailed):
        last = "\n".join(event.last_lines[-5:])
        message = f"{event.reason}: {event.message}" + (f"\n{last}" if last else "")
        return "FAILED", {"message": message[:4000]}
    if isinstance(event, ev.BuildCanceled):
        return "CANCELED", {}
    if isinstance(event, ev.BuildStarted):
        return "STARTED", {"commit": event.commit} if event.commit else {}
    return "QUEUED", {}


# what the deployer.builds consumer hands to ``on_build_event``
EVENT_TYPES = tuple(
    t.event_type
    for t in (ev.BuildQueued, ev.BuildStarted, ev.BuildSucceeded, ev.BuildFailed, ev.BuildCanceled)
)
