"""Pull requests' previews and new commits in the deployer, against the real PostgreSQL: the
catalog's ``PreviewChanged`` queues a DEPLOY of the whole preview at the head commit with the
trigger ``preview`` (an unknown environment queues nothing); the scheduler's
``NewCommitAvailable`` records the branch's newest push per known service (an older push
never moves it back) and the status says "new commit available" once what runs was built
before it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from services.deployer.tests.integration.test_git_deploys import (
    application,
    command,
    deployments,
    pool,
)
from slipway_contracts import new_event
from slipway_contracts.events import catalog as ev
from slipway_contracts.events.scheduler import NewCommitAvailable
from slipway_deployer.db import head_queries
from slipway_deployer.usecases import new_commits, projection
from slipway_libs import db

pytestmark = pytest.mark.integration
__all__ = ["pool"]  # the fixture, shared

HEAD = "feedface" * 5
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def preview_changed(pool: asyncpg.Pool, org: uuid.UUID, env: uuid.UUID) -> None:
    """As the ``deployer.catalog`` consumer applies it: in one transaction."""
    payload = ev.PreviewChanged(
        environment_id=env,
        organization_id=org,
        project_id=uuid.uuid4(),
        pull_request=42,
        branch="feature",
        commit=HEAD,
    )
    async with db.transaction(pool) as conn:
        await projection.apply(
            conn, new_event(payload, subject=str(payload.project_id), source="catalog")
        )


async def test_a_preview_change_deploys_the_whole_preview_at_its_head(pool) -> None:
    org, env, _app = await application(pool)
    await preview_changed(pool, org, env)
    [deploy] = await deployments(pool, env)
    assert (deploy["action"], deploy["trigger"], deploy["version"]) == ("DEPLOY", "preview", HEAD)
    assert list(deploy["service_ids"]) == []  # the whole environment
    assert deploy["requested_by"]["id"] == "preview"
    unknown = uuid.uuid4()
    await preview_changed(pool, org, unknown)  # deleted since: nothing queued, no failure
    assert await deployments(pool, unknown) == []


async def pushed(
    pool: asyncpg.Pool, org: uuid.UUID, env: uuid.UUID, services: list[uuid.UUID], **at: float
) -> None:
    payload = NewCommitAvailable(
        organization_id=org,
        environment_id=env,
        service_ids=services,
        branch="main",
        commit=f"{int(at.get('seconds', 0)):040x}",
        pushed_at=T0 + timedelta(**at),
    )
    envelope = new_event(payload, subject=str(env), source="scheduler", organization_id=org)
    async with db.transaction(pool) as conn:
        await new_commits.on_new_commit(conn, envelope)


async def test_the_newest_push_of_a_known_service_is_recorded(pool) -> None:
    org, env, app = await application(pool)
    await pushed(pool, org, env, [app, uuid.uuid4()], seconds=20)
    await pushed(pool, org, env, [app], seconds=10)  # delivered late: older
    async with pool.acquire() as conn:
        heads = await head_queries.heads(conn, env)
    assert list(heads) == [app], "an unknown service got a head"
    assert (heads[app].commit, heads[app].pushed_at) == (f"{20:040x}", T0 + timedelta(seconds=20))


async def service_run(
    conn: asyncpg.Connection,
    deployment: uuid.UUID,
    service: uuid.UUID,
    *,
    built: bool,
    started: datetime,
) -> None:
    """The service's run in that deployment, done: a build of ``HEAD``, or its image again."""
    await conn.execute("UPDATE deployments SET started_at = $2 WHERE id = $1", deployment, started)
    await conn.execute(
        "INSERT INTO deployment_services (deployment_id, service_id, position, name, kind,"
        " status, build_id, commit, image, started_at, finished_at)"
        " VALUES ($1, $2, 0, 'web', 'application', 'DONE', $3, $4, $5, $6, $7)",
        deployment,
        service,
        uuid.uuid4() if built else None,
        HEAD if built else None,
        f"127.0.0.1:15000/org/app:{HEAD}",
        started,
        started + timedelta(minutes=1),
    )


async def test_a_redeploy_runs_the_commit_an_earlier_deployment_built(pool) -> None:
    org, env, app = await application(pool)
    await preview_changed(pool, org, env)  # builds HEAD
    await command(pool, org, env, app)  # then runs its image again, building nothing
    async with db.transaction(pool) as conn:
        first, second = await conn.fetch(
            "SELECT id FROM deployments WHERE environment_id = $1 ORDER BY seq", env
        )
        await service_run(conn, first["id"], app, built=True, started=T0)
        await service_run(conn, second["id"], app, built=False, started=T0 + timedelta(hours=1))
        running = await head_queries.deployed_commits(conn, env)
        commits = await head_queries.commits_of(conn, [first["id"], second["id"]])
    # what runs was built when the first deployment started, not when the redeploy did
    assert (running[app].commit, running[app].built_from) == (HEAD, T0)
    assert commits == {
        first["id"]: [{"service_id": str(app), "commit": HEAD}],
        second["id"]: [{"service_id": str(app), "commit": HEAD}],  # read from the image's tag
    }
