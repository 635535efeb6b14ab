"""Partitions on real PostgreSQL: created ahead and on demand, dropped whole once expired; an
organization with a shorter retention loses its older lines only."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest

from services.logs.tests.integration.conftest import member_of
from services.logs.tests.integration.events import lines_event
from slipway_libs import db
from slipway_logs.db import queries
from slipway_logs.domain import partitions
from slipway_logs.domain.paging import LogQuery
from slipway_logs.usecases import ingest, reads, retention

pytestmark = pytest.mark.integration


async def _today(pool: asyncpg.Pool) -> date:
    async with pool.acquire() as conn:
        return await queries.today(conn)


async def _partitions(pool: asyncpg.Pool) -> set[str]:
    async with pool.acquire() as conn:
        return set(await queries.partitions(conn))


async def _store_at(pool: asyncpg.Pool, org: uuid.UUID, service: uuid.UUID, day: date) -> None:
    """A line stored on ``day`` (a day in the past: what an older partition holds)."""
    async with pool.acquire() as conn, conn.transaction():
        await queries.ensure_partition(conn, day)
        await conn.execute(
            """
            INSERT INTO log_streams (stream_id, stream_kind, organization_id, last_cursor)
            VALUES ($1, 'service', $2, 1)
            ON CONFLICT (stream_id) DO UPDATE SET last_cursor = log_streams.last_cursor + 1
            """,
            service,
            org,
        )
        await conn.execute(
            """
            INSERT INTO log_lines (stream_id, cursor, stored_at, at, organization_id, kind,
                                   stream, text)
            SELECT $1, last_cursor, $3, $3, $2, 'live', 'stdout', 'old'
            FROM log_streams WHERE stream_id = $1
            """,
            service,
            org,
            datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=12),
        )


async def _texts(pool: asyncpg.Pool, service: uuid.UUID) -> list[str]:
    async with db.transaction(pool) as conn:
        page = await reads.read(conn, "service", service, LogQuery(), organization_id=None)
    return [line.text for line in page.items]


async def test_partitions_are_created_ahead_and_expired_ones_dropped(pool) -> None:
    today = await _today(pool)
    org, service = uuid.uuid4(), uuid.uuid4()
    await _store_at(pool, org, service, today - timedelta(days=31))
    await _store_at(pool, org, service, today - timedelta(days=29))
    async with db.transaction(pool) as conn:
        await ingest.append(conn, [lines_event(org, "new", kind="live", service_id=service)])
    assert await _texts(pool, service) == ["old", "old", "new"]

    done = await retention.maintain(pool, retention_days=30, days_ahead=2)

    assert done.dropped == [partitions.name(today - timedelta(days=31))]
    async with pool.acquire() as conn:  # its day's search chunks went with it
        search = {
            r["relname"]
            for r in await conn.fetch(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " WHERE i.inhparent = 'log_search'::regclass"
            )
        }
    assert f"log_search_{today - timedelta(days=31):%Y%m%d}" not in search
    assert f"log_search_{today - timedelta(days=29):%Y%m%d}" in search
    assert {partitions.name(today + timedelta(days=n)) for n in (0, 1, 2)} <= await _partitions(
        pool
    )
    assert await _texts(pool, service) == ["old", "new"]
    # the stream's cursors go on: the expired prefix is never given again
    async with db.transaction(pool) as conn:
        await ingest.append(conn, [lines_event(org, "newer", kind="live", service_id=service)])
        page = await reads.read(conn, "service", service, LogQuery(), organization_id=None)
    assert [(x.cursor, x.text) for x in page.items] == [(2, "old"), (3, "new"), (4, "newer")]
    # a second pass has nothing to do
    again = await retention.maintain(pool, retention_days=30, days_ahead=2)
    assert (again.created, again.dropped) == ([], [])


async def test_ingest_creates_todays_partition_when_the_worker_has_not(pool) -> None:
    today = partitions.name(await _today(pool))
    async with pool.acquire() as conn:
        await conn.execute(f"DROP TABLE {today}")
    org, service = uuid.uuid4(), uuid.uuid4()
    async with db.transaction(pool) as conn:
        await ingest.append(conn, [lines_event(org, "hello", kind="live", service_id=service)])
    assert today in await _partitions(pool)
    assert await _texts(pool, service) == ["hello"]


async def test_an_organization_with_a_shorter_retention_loses_only_its_older_lines(pool) -> None:
    today = await _today(pool)
    short, usual = uuid.uuid4(), uuid.uuid4()
    short_service, usual_service = uuid.uuid4(), uuid.uuid4()
    for org, service in ((short, short_service), (usual, usual_service)):
        await _store_at(pool, org, service, today - timedelta(days=3))
        async with db.transaction(pool) as conn:
            await ingest.append(conn, [lines_event(org, "new", kind="live", service_id=service)])
    async with pool.acquire() as conn:
        await retention.set_organization_retention(conn, short, 2)

    done = await retention.maintain(pool, retention_days=30, days_ahead=1)

    assert done.deleted == {short: 1}
    assert await _texts(pool, short_service) == ["new"]
    assert await _texts(pool, usual_service) == ["old", "new"]
    # the organization's older search chunks go with its lines
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO log_search (stream_id, first_cursor, last_cursor, stored_at,"
            " organization_id, words) VALUES ($1, 1, 1, now() - interval '3 days', $2, 'old')",
            short_service,
            short,
        )
    await retention.maintain(pool, retention_days=30, days_ahead=1)
    async with pool.acquire() as conn:
        left = await conn.fetch("SELECT words FROM log_search WHERE organization_id = $1", short)
    assert [r["words"] for r in left] == ["new"]


async def test_an_organization_sets_its_retention_through_the_api(pool, api) -> None:
    org = uuid.uuid4()
    path, who = f"/organizations/{org}/log-retention", member_of(org)
    assert (await api.get(path, headers=who)).json() == {
        "days": None,
        "default_days": 30,
        "effective_days": 30,
    }
    answer = await api.put(path, json={"days": 7}, headers=who)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"days": 7, "default_days": 30, "effective_days": 7}
    assert (await api.get(path, headers=who)).json()["days"] == 7
    async with pool.acquire() as conn:
        assert await queries.organization_retentions(conn) == {org: 7}

    too_long = await api.put(path, json={"days": 31}, headers=who)
    assert too_long.status_code == 422
    assert too_long.json()["error"]["code"] == "LOGS_RETENTION_TOO_LONG"
    for bad in ({"days": 0}, {"days": "7"}, {}, {"days": 7, "extra": 1}):
        refused = await api.put(path, json=bad, headers=who)
        assert refused.status_code == 422, bad
        assert refused.json()["error"]["code"] == "VALIDATION_ERROR"
    # another organization's member cannot read or change it
    stranger = member_of(uuid.uuid4())
    assert (await api.get(path, headers=stranger)).status_code == 404
    assert (await api.put(path, json={"days": 1}, headers=stranger)).status_code == 404

    reset = await api.put(path, json={"days": None}, headers=who)
    assert reset.json() == {"days": None, "default_days": 30, "effective_days": 30}
    async with pool.acquire() as conn:
        assert await queries.organization_retentions(conn) == {}
