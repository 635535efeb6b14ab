"""The builder's events about a build, each written through the outbox in the transaction of the
change it reports (keyed by the build: a build's events stay in order)."""

from __future__ import annotations

import asyncpg

from slipway_builder.db import queries as q
from slipway_builder.domain.builds import Build, Outcome, event_ids
from slipway_contracts import EventPayload
from slipway_contracts.events import builder as ev
from slipway_libs import outbox

SOURCE = "builder"


async def publish(conn: asyncpg.Connection, build: Build, payload: EventPayload) -> None:
    await outbox.publish(
        conn,
        payload,
        subject=str(build.id),
        source=SOURCE,
        organization_id=build.organization_id,
    )


async def end(
    conn: asyncpg.Connection,
    build: Build,
    status: str,
    *,
    outcome: Outcome | None = None,
    reason: str | None = None,
    message: str | None = None,
    duration: float = 0.0,
    last_lines: list[str] | None = None,
) -> None:
    """Record the build's final status with its event; a build already ended changes nothing
    (a late or duplicate end)."""
    ended = await q.finish(
        conn,
        build.id,
        status=status,
        image=outcome.image if outcome else None,
        digest=outcome.digest if outcome else None,
        skipped=outcome.skipped if outcome else None,
        reason=reason,
        message=message,
    )
    if ended is None:
        return
    ids = event_ids(build)
    payload: EventPayload
    if status == "SUCCEEDED" and outcome is not None:
        payload = ev.BuildSucceeded(
            **ids,
            image=outcome.image,
            digest=outcome.digest,
            commit=outcome.commit,
            duration_s=duration,
            skipped=outcome.skipped,
        )
    elif status == "CANCELED":
        payload = ev.BuildCanceled(**ids, duration_s=duration)
    else:
        payload = ev.BuildFailed(
            **ids,
            reason=reason or "FAILED",
            message=message or "",
            last_lines=last_lines or [],
            duration_s=duration,
        )
    await publish(conn, build, payload)
