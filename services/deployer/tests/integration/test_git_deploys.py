"""A git push's commands in the deployer, against the real PostgreSQL: a deploy of that one
service at the pushed commit, queued with the trigger ``git_push`` and the actor ``git``; the
same command again merges into the pending request; an unknown service, or one of another
environment, is done with nothing queued."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from slipway_contracts import new_event
from slipway_contracts.events import catalog as ev
from slipway_contracts.events.scheduler import ServiceDeployRequested
from slipway_deployer.bootstrap import DEFINITION
from slipway_deployer.usecases import git_deploys, projection
from slipway_libs import db

pytestmark = pytest.mark.integration

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
async def pool(database_factory) -> AsyncIterator[asyncpg.Pool]:
    dsn = await database_factory("deployer", DEFINITION.migrations)
    pool = await db.create_pool(dsn, max_size=4)
    yield pool
    await pool.close()


async def application(pool: asyncpg.Pool) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """An environment and its application as the catalog's events made them known."""
    org, project, env, app = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
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
        ev.ServiceChanged(
            service_id=app,
            organization_id=org,
            project_id=project,
            environment_id=env,
            name="web",
            kind="application",
            spec={
                "kind": "application",
                "git": {"url": "https://github.com/acme/shop.git", "branch": "main"},
                "auto_deploy": True,
            },
            version=1,
        ),
    ]
    async with db.transaction(pool) as conn:
        for payload in events:
            envelope = new_event(payload, subject=str(project), source="catalog")
            await projection.apply(conn, envelope)
    return org, env, app


async def command(pool: asyncpg.Pool, org: uuid.UUID, env: uuid.UUID, app: uuid.UUID) -> None:
    """As the ``deployer.schedules`` consumer applies it: in one transaction."""
    payload = ServiceDeployRequested(
        organization_id=org,
        environment_id=env,
        service_id=app,
        commit=COMMIT,
        delivery_id=uuid.uuid4(),
    )
    envelope = new_event(payload, subject=str(env), source="scheduler", organization_id=org)
    async with db.transaction(pool) as conn:
        await git_deploys.on_deploy_requested(conn, envelope)


async def deployments(pool: asyncpg.Pool, env: uuid.UUID) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return await conn.fetch(
            "SELECT action, trigger, service_ids, version, requested_by FROM deployments"
            " WHERE environment_id = $1 ORDER BY created_at",
            env,
        )


async def test_a_push_deploys_the_service_at_its_commit_with_the_trigger_git_push(pool) -> None:
    org, env, app = await application(pool)
    await command(pool, org, env, app)
    [deploy] = await deployments(pool, env)
    assert (deploy["action"], deploy["trigger"], deploy["version"]) == (
        "DEPLOY",
        "git_push",
        COMMIT,
    )
    assert list(deploy["service_ids"]) == [app]
    assert deploy["requested_by"]["origin"] == "git"
    await command(pool, org, env, app)  # the same deploy, still pending: merged
    assert len(await deployments(pool, env)) == 1


async def test_an_unknown_or_misplaced_service_is_done(pool) -> None:
    org, env, app = await application(pool)
    await command(pool, org, env, uuid.uuid4())  # deleted since the push, or never known
    other_env = uuid.uuid4()
    await command(pool, org, other_env, app)  # not that environment's
    assert await deployments(pool, env) == [] and await deployments(pool, other_env) == []
