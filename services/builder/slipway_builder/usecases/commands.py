"""The builder's use cases for the deployer's commands: a build request becomes a queued build,
a cancel ends a queued build at once (a running one is stopped by the worker)."""

from __future__ import annotations

import asyncpg

from slipway_builder.db import queries as q
from slipway_builder.domain.builds import event_ids
from slipway_builder.usecases.build_events import publish
from slipway_contracts import Envelope
from slipway_contracts.events import builder as ev
from slipway_contracts.events.deployer import BuildCancelRequested, BuildRequested

WAKE_CHANNEL = "slipway_builds"  # notified when a build is queued


async def on_build_requested(conn: asyncpg.Connection, envelope: Envelope) -> None:
    command = BuildRequested.model_validate(envelope.data)
    build = await q.insert_build(
        conn,
        build_id=command.build_id,
        org_id=command.organization_id,
        env_id=command.environment_id,
        service_id=command.service_id,
        deployment_id=command.deployment_id,
        source=command.source.model_dump(),
        build_args=command.build_args,
        image_repository=command.image_repository,
        git_token_sealed=command.git_token_sealed,
        git_ssh_key_sealed=command.git_ssh_key_sealed,
        git_known_hosts=command.git_known_hosts,
        requested_at=envelope.occurred_at,
    )
    if build is None:
        return  # the same build asked twice
    position = await q.queued_before(conn, build.id)
    await publish(conn, build, ev.BuildQueued(**event_ids(build), position=position))
    await conn.execute("SELECT pg_notify($1, '')", WAKE_CHANNEL)  # delivered at commit


async def on_cancel_requested(conn: asyncpg.Connection, envelope: Envelope) -> None:
    command = BuildCancelRequested.model_validate(envelope.data)
    build = await q.request_cancel(conn, command.build_id)
    if build is None or build.status != "QUEUED":
        return  # unknown, already final, or running (the worker stops it)
    ended = await q.finish(conn, build.id, status="CANCELED")
    if ended is not None:
        await publish(conn, build, ev.BuildCanceled(**event_ids(build)))
