"""A cron job's concurrency policy in the deployer, against the real PostgreSQL (issue 13, item
3): while a run is queued or running, ``forbid`` skips a scheduled run and refuses a user's,
``allow`` queues it alongside, ``replace`` cancels the old run and starts the new one only once
the old one has stopped; the same firing delivered twice never replaces itself."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from slipway_contracts import new_event
from slipway_contracts.events import catalog as ev
from slipway_deployer.bootstrap import DEFINITION
from slipway_deployer.db import queries as q
from slipway_deployer.usecases import jobs, projection
from slipway_libs import db
from slipway_libs.actor import Actor
from slipway_libs.errors import Clash

pytestmark = pytest.mark.integration

USER = Actor(type="user", id=str(uuid.uuid4()), user_id=uuid.uuid4())
FIRED = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)


@pytest.fixture
async def pool(database_factory) -> AsyncIterator[asyncpg.Pool]:
    dsn = await database_factory("deployer", DEFINITION.migrations)
    pool = await db.create_pool(dsn, max_size=4)
    yield pool
    await pool.close()


async def deployed_job(pool: asyncpg.Pool, policy: str) -> uuid.UUID:
    """A deployed cron job with that policy, as the catalog's events and a deployment left it."""
    org, project, env, job = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
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
            service_id=job,
            organization_id=org,
            project_id=project,
            environment_id=env,
            name="report",
            kind="cronjob",
            spec={
                "kind": "cronjob",
                "image": {"registry": "r", "name": "n", "tag": "t"},
                "schedule": "0 * * * *",
                "timezone": "Europe/Paris",
                "concurrency_policy": policy,
            },
            version=1,
        ),
    ]
    async with db.transaction(pool) as conn:
        for payload in events:
            await projection.apply(conn, new_event(payload, subject=str(project), source="catalog"))
        await q.save_service_status(
            conn, service_id=job, environment_id=env, organization_id=org, state="DEPLOYED"
        )
    return job


async def run(pool: asyncpg.Pool, job: uuid.UUID, scheduled_at: datetime | None = None) -> None:
    async with db.transaction(pool) as conn:
        await jobs.request_run(
            conn, job, actor=None if scheduled_at else USER, scheduled_at=scheduled_at
        )


async def statuses(pool: asyncpg.Pool, job: uuid.UUID) -> list[str]:
    async with pool.acquire() as conn:
        return [r.status for r in reversed(await q.job_runs(conn, job, 10))]


async def claim(pool: asyncpg.Pool) -> list[uuid.UUID]:
    async with db.transaction(pool) as conn:
        return [r.service_id for r in await q.claim_job_runs(conn, 10)]


async def test_forbid_skips_a_scheduled_run_and_refuses_a_users(pool: asyncpg.Pool) -> None:
    job = await deployed_job(pool, "forbid")
    await run(pool, job)
    with pytest.raises(Clash) as refused:
        await run(pool, job)
    assert refused.value.code == "JOB_ALREADY_RUNNING"
    await run(pool, job, FIRED)
    assert await statuses(pool, job) == ["QUEUED", "SKIPPED"]


async def test_allow_runs_alongside(pool: asyncpg.Pool) -> None:
    job = await deployed_job(pool, "allow")
    await run(pool, job)
    assert await claim(pool) == [job]
    await run(pool, job, FIRED)
    await run(pool, job)
    assert await statuses(pool, job) == ["RUNNING", "QUEUED", "QUEUED"]
    assert await claim(pool) == [job, job]


async def test_replace_cancels_then_starts_once_the_old_run_stopped(pool: asyncpg.Pool) -> None:
    job = await deployed_job(pool, "replace")
    await run(pool, job)
    assert await claim(pool) == [job]
    await run(pool, job, FIRED)
    assert await statuses(pool, job) == ["CANCELING", "QUEUED"]
    assert await claim(pool) == [], "the new run waits until the replaced one stopped"
    await run(pool, job, FIRED)  # the same firing again (a second scheduler): nothing changes
    assert await statuses(pool, job) == ["CANCELING", "QUEUED"]

    async with db.transaction(pool) as conn:  # what the worker does once it stopped the run
        [old] = [r for r in await q.running_job_runs(conn) if r.service_id == job]
        assert old.message and "replaced by a newer run" in old.message
        await q.finish_job_run(conn, old.id, "CANCELED", exit_code=None, message=old.message)
    assert await claim(pool) == [job]
    # a queued run is replaced at once: it never started
    await run(pool, job, FIRED + timedelta(hours=1))
    await run(pool, job, FIRED + timedelta(hours=2))
    assert await statuses(pool, job) == ["CANCELED", "CANCELING", "CANCELED", "QUEUED"]
