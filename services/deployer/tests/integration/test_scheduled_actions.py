"""A deployment rule's commands in the deployer, against the real PostgreSQL: a stop queues a
STOP with the trigger ``schedule`` (nothing to stop: nothing queued), a start deploys only a
stopped environment, an unknown environment is done."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Literal

import asyncpg
import pytest

from slipway_contracts import new_event
from slipway_contracts.events import catalog as ev
from slipway_contracts.events.scheduler import EnvironmentActionRequested
from slipway_deployer.bootstrap import DEFINITION
from slipway_deployer.db import queries as q
from slipway_deployer.usecases import projection, scheduled_actions
from slipway_libs import db

pytestmark = pytest.mark.integration


@pytest.fixture
async def pool(database_factory) -> AsyncIterator[asyncpg.Pool]:
    dsn = await database_factory("deployer", DEFINITION.migrations)
    pool = await db.create_pool(dsn, max_size=4)
    yield pool
    await pool.close()


async def environment(pool: asyncpg.Pool) -> tuple[uuid.UUID, uuid.UUID]:
    """An environment the deployer's projection knows (as the catalog's events made it)."""
    org, project, env = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    events = [
        ev.ProjectChanged(project_id=project, organization_id=org, name="Shop", version=1),
        ev.EnvironmentChanged(
            environment_id=env,
            organization_id=org,
            project_id=project,
            name="staging",
            mode="staging",
            cluster_id=uuid.uuid4(),
            version=1,
        ),
    ]
    async with db.transaction(pool) as conn:
        for payload in events:
            envelope = new_event(payload, subject=str(project), source="catalog")
            await projection.apply(conn, envelope)
    return org, env


async def command(
    pool: asyncpg.Pool, org: uuid.UUID, env: uuid.UUID, action: Literal["stop", "deploy"]
) -> None:
    """As the ``deployer.schedules`` consumer applies it: in one transaction."""
    payload = EnvironmentActionRequested(
        environment_id=env,
        organization_id=org,
        action=action,
        scheduled_at=datetime(2026, 1, 5, 18, tzinfo=UTC),
    )
    envelope = new_event(payload, subject=str(env), source="scheduler", organization_id=org)
    async with db.transaction(pool) as conn:
        await scheduled_actions.on_action_requested(conn, envelope)


async def deployments(pool: asyncpg.Pool, env: uuid.UUID) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return await conn.fetch(
            "SELECT action, trigger, requested_by FROM deployments WHERE environment_id = $1"
            " ORDER BY created_at",
            env,
        )


async def set_state(pool: asyncpg.Pool, org: uuid.UUID, env: uuid.UUID, state: str) -> None:
    async with db.transaction(pool) as conn:
        await q.save_environment_status(conn, env, org, state)


async def test_a_stop_is_queued_with_the_trigger_schedule(pool) -> None:
    org, env = await environment(pool)
    await set_state(pool, org, env, "DEPLOYED")
    await command(pool, org, env, "stop")
    [stop] = await deployments(pool, env)
    assert (stop["action"], stop["trigger"]) == ("STOP", "schedule")
    assert stop["requested_by"]["origin"] == "scheduler"


async def test_nothing_to_stop_queues_nothing(pool) -> None:
    org, env = await environment(pool)  # never deployed
    await command(pool, org, env, "stop")
    assert await deployments(pool, env) == []


async def test_a_start_deploys_only_a_stopped_environment(pool) -> None:
    org, env = await environment(pool)
    await command(pool, org, env, "deploy")  # never deployed: left as it is
    assert await deployments(pool, env) == []
    await set_state(pool, org, env, "DEPLOYED")
    await command(pool, org, env, "deploy")  # running already
    assert await deployments(pool, env) == []
    await set_state(pool, org, env, "STOPPED")
    await command(pool, org, env, "deploy")
    [start] = await deployments(pool, env)
    assert (start["action"], start["trigger"]) == ("DEPLOY", "schedule")


async def test_an_unknown_environment_is_done(pool) -> None:
    org, env = uuid.uuid4(), uuid.uuid4()  # deleted since the rule fired: no error, no request
    await command(pool, org, env, "stop")
    await command(pool, org, env, "deploy")
    assert await deployments(pool, env) == []
