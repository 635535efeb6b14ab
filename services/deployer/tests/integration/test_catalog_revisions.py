"""How far the deployer's copy of the catalog has come, against the real PostgreSQL: the catalog
consumer records the revision in the transaction that applies the event, a waiter is released by
its commit (NOTIFY), and without a listener it still sees the row (poll fallback)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from slipway_contracts import new_event
from slipway_contracts.events import catalog as ev
from slipway_deployer.adapters.catalog_revisions import CHANNEL, CatalogRevisions
from slipway_deployer.bootstrap import DEFINITION
from slipway_deployer.usecases import projection
from slipway_libs import db

pytestmark = pytest.mark.integration


@pytest.fixture
async def deployer_db(database_factory) -> AsyncIterator[tuple[str, asyncpg.Pool]]:
    dsn = await database_factory("deployer", DEFINITION.migrations)
    pool = await db.create_pool(dsn, max_size=4)
    yield dsn, pool
    await pool.close()


def project_event(project: uuid.UUID, org: uuid.UUID, revision: int) -> ev.ProjectChanged:
    return ev.ProjectChanged(
        project_id=project, organization_id=org, name="Shop", version=revision, revision=revision
    )


async def apply(pool: asyncpg.Pool, payload: ev.ProjectChanged) -> None:
    """As the ``deployer.catalog`` consumer does: in one transaction."""
    envelope = new_event(
        payload,
        subject=str(payload.project_id),
        source="catalog",
        organization_id=payload.organization_id,
    )
    async with db.transaction(pool) as conn:
        await projection.apply(conn, envelope)


async def listening(pool: asyncpg.Pool) -> None:
    """Until the listener's LISTEN is in place (it has no other ready signal); up to 60 s, a
    crowded machine's pace."""
    for _ in range(1200):
        async with pool.acquire() as conn:
            if await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE query = $1", f'LISTEN "{CHANNEL}"'
            ):
                return
        await asyncio.sleep(0.05)
    raise AssertionError("the listener never listened")


async def test_a_waiter_is_released_by_the_commit_of_the_revision_it_waits_for(
    deployer_db,
) -> None:
    dsn, pool = deployer_db
    # a poll far longer than the test's deadline: only the notification can release it in time
    revisions = CatalogRevisions(pool, dsn, poll_s=60)
    listener = asyncio.create_task(revisions.listen())
    try:
        await listening(pool)
        project, org = uuid.uuid4(), uuid.uuid4()
        waiter = asyncio.create_task(revisions.reached(project, 2, timeout_s=60))
        await apply(pool, project_event(project, org, 1))
        done, _ = await asyncio.wait({waiter}, timeout=0.5)
        assert not done, "released before the projection had the revision"
        await apply(pool, project_event(project, org, 2))
        assert await asyncio.wait_for(waiter, 30) is True
        async with pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT * FROM catalog_revisions WHERE project_id = $1", project
            )
            named = await conn.fetchval("SELECT name FROM catalog_projects WHERE id = $1", project)
        assert (row["revision"], row["organization_id"], named) == (2, org, "Shop")
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener


async def test_without_a_listener_a_waiter_reads_the_row_and_gives_up_at_its_deadline(
    deployer_db,
) -> None:
    dsn, pool = deployer_db
    revisions = CatalogRevisions(pool, dsn, poll_s=0.05)  # never listens
    project, org = uuid.uuid4(), uuid.uuid4()
    await apply(pool, project_event(project, org, 3))
    await apply(pool, project_event(project, org, 1))  # a late, older event moves nothing back
    assert await revisions.reached(project, 3, timeout_s=60) is True  # a wait on Kafka
    assert await revisions.reached(project, 4, timeout_s=0.2) is False
    assert await revisions.reached(uuid.uuid4(), 1, timeout_s=0.2) is False
