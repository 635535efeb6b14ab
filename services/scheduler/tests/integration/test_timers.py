"""Timers on the real PostgreSQL: armed by the projection, fired by claims (two claimers fire
each due instant once), a down period fired once with its lateness, schedule changes and
deletions taking effect, daylight-saving nights through the firing loop."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest

from services.scheduler.tests.integration.conftest import Catalog, HandClock
from slipway_contracts import Envelope
from slipway_libs import db
from slipway_scheduler.usecases import firing
from slipway_scheduler.usecases.projection import Projection

pytestmark = pytest.mark.integration


async def project(pool: asyncpg.Pool, clock: HandClock, *events: Envelope) -> None:
    projection = Projection(clock)
    async with db.transaction(pool) as conn:
        for event in events:
            await projection.apply(conn, event)


async def fire(pool: asyncpg.Pool, clock: HandClock, limit: int = 500) -> int:
    async with db.transaction(pool) as conn:
        return await firing.fire_due(conn, clock, limit=limit)


async def commands(pool: asyncpg.Pool) -> list[dict]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT topic, event_type, payload FROM outbox ORDER BY id",
        )
    out = []
    for row in rows:
        envelope = Envelope.model_validate_json(row["payload"])
        out.append({"topic": row["topic"], "type": row["event_type"], **envelope.data})
    return out


async def timer_row(pool: asyncpg.Pool, target: uuid.UUID, kind: str = "cron") -> asyncpg.Record:
    async with pool.acquire() as conn:
        return await conn.fetchrow(
            "SELECT * FROM timers WHERE kind = $1 AND target_id = $2", kind, target
        )


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


async def test_a_cron_job_fires_its_command_at_each_due_minute(pool, clock) -> None:
    catalog, job = Catalog(), uuid.uuid4()
    await project(pool, clock, *catalog.deployed_job(job, "* * * * *"))
    assert (await timer_row(pool, job))["next_fire_at"] == utc(2026, 1, 5, 9, 1)

    assert await fire(pool, clock) == 0  # not due yet
    clock.advance(seconds=30)
    assert await fire(pool, clock) == 1
    assert await fire(pool, clock) == 0  # once per due instant
    clock.advance(minutes=1)
    assert await fire(pool, clock) == 1

    sent = await commands(pool)
    assert [c["type"] for c in sent] == ["scheduler.JobRunRequested"] * 2
    assert sent[0]["topic"] == "scheduler.command.v1"
    assert sent[0]["service_id"] == str(job)
    assert sent[0]["environment_id"] == str(catalog.environment_id)
    assert sent[0]["organization_id"] == str(catalog.organization_id)
    assert [c["scheduled_at"] for c in sent] == ["2026-01-05T09:01:00Z", "2026-01-05T09:02:00Z"]


async def test_a_down_period_fires_once_with_its_lateness(pool, clock) -> None:
    catalog, job = Catalog(), uuid.uuid4()
    await project(pool, clock, *catalog.deployed_job(job, "*/5 * * * *"))
    clock.advance(hours=3)  # the scheduler was down: 36 periods missed

    assert await fire(pool, clock) == 1
    assert await fire(pool, clock) == 0
    row = await timer_row(pool, job)
    assert row["last_scheduled_at"] == utc(2026, 1, 5, 9, 5)
    assert row["last_lateness_ms"] == (3 * 3600 + 30 - 5 * 60) * 1000
    assert row["next_fire_at"] == utc(2026, 1, 5, 12, 5)
    assert [c["scheduled_at"] for c in await commands(pool)] == ["2026-01-05T09:05:00Z"]


async def test_two_claimers_on_one_database_fire_each_timer_once(scheduler_db, clock) -> None:
    dsn, pool = scheduler_db
    catalog = Catalog()
    jobs = [uuid.uuid4() for _ in range(300)]
    await project(pool, clock, *(e for j in jobs for e in catalog.deployed_job(j, "* * * * *")))
    other = await db.create_pool(dsn, max_size=3)
    try:
        for _ in range(3):  # three due minutes, each raced by two claimers in small batches
            clock.advance(minutes=1)

            async def drain(claimer: asyncpg.Pool) -> int:
                total = 0
                while fired := await fire(claimer, clock, limit=7):
                    total += fired
                return total

            counts = await asyncio.gather(drain(pool), drain(other), drain(pool), drain(other))
            assert sum(counts) == len(jobs)
    finally:
        await other.close()
    sent = await commands(pool)
    assert len(sent) == 3 * len(jobs)
    assert len({(c["service_id"], c["scheduled_at"]) for c in sent}) == 3 * len(jobs)


async def test_a_claimer_killed_mid_batch_loses_nothing_and_fires_nothing_twice(
    pool, clock
) -> None:
    catalog = Catalog()
    jobs = [uuid.uuid4() for _ in range(50)]
    await project(pool, clock, *(e for j in jobs for e in catalog.deployed_job(j, "* * * * *")))
    clock.advance(minutes=1)
    # a claimer dies inside its transaction (after claiming and writing its commands)
    with pytest.raises(RuntimeError):
        async with db.transaction(pool) as conn:
            assert await firing.fire_due(conn, clock, limit=20) == 20
            raise RuntimeError("killed")
    assert await fire(pool, clock) == 50
    sent = await commands(pool)
    assert sorted(c["service_id"] for c in sent) == sorted(str(j) for j in jobs)


async def test_a_job_fires_only_while_the_deployer_runs_it(pool, clock) -> None:
    catalog, job = Catalog(), uuid.uuid4()
    await project(pool, clock, catalog.cron_job(job, "*/10 * * * *"))
    assert await timer_row(pool, job) is None  # not deployed: the deployer would skip its runs
    clock.advance(minutes=25)  # 09:25: deployed now, the next firing counts from now
    await project(pool, clock, catalog.service_status(job, "QUEUED"))
    assert await timer_row(pool, job) is None
    await project(pool, clock, catalog.service_status(job, "DEPLOYED"))
    assert (await timer_row(pool, job))["next_fire_at"] == utc(2026, 1, 5, 9, 30)
    # a running-status change of the deployed job leaves its timer as it is
    clock.advance(minutes=1)
    await project(pool, clock, catalog.service_status(job, "RESTARTED"))
    assert (await timer_row(pool, job))["next_fire_at"] == utc(2026, 1, 5, 9, 30)
    await project(pool, clock, catalog.service_status(job, "STOPPED"))
    assert await timer_row(pool, job) is None
    clock.advance(minutes=30)
    assert await fire(pool, clock) == 0


async def test_a_schedule_change_takes_effect_at_the_next_firing(pool, clock) -> None:
    catalog, job = Catalog(), uuid.uuid4()
    await project(pool, clock, *catalog.deployed_job(job, "0 * * * *"))
    assert (await timer_row(pool, job))["next_fire_at"] == utc(2026, 1, 5, 10)
    await project(pool, clock, *catalog.deployed_job(job, "15 9 * * *", "Europe/Paris"))
    # 09:15 in Paris is 08:15 UTC: today's is past, tomorrow's is next
    assert (await timer_row(pool, job))["next_fire_at"] == utc(2026, 1, 6, 8, 15)
    clock.advance(hours=1)
    assert await fire(pool, clock) == 0  # the old schedule's 10:00 never fires


async def test_redelivered_and_older_versions_change_nothing(pool, clock) -> None:
    catalog, job = Catalog(), uuid.uuid4()
    first = catalog.cron_job(job, "0 * * * *")
    second = catalog.cron_job(job, "30 * * * *")
    deployed = catalog.service_status(job)
    await project(pool, clock, first, second, deployed)
    clock.advance(minutes=10)
    await project(pool, clock, first, second, deployed)  # redelivered, in and out of order
    row = await timer_row(pool, job)
    assert (row["expression"], row["next_fire_at"]) == ("30 * * * *", utc(2026, 1, 5, 9, 30))


async def test_a_deleted_job_and_a_deleted_environment_stop_firing(pool, clock) -> None:
    catalog = Catalog()
    gone, kept = uuid.uuid4(), uuid.uuid4()
    await project(pool, clock, *catalog.deployed_job(gone, "* * * * *"))
    await project(pool, clock, *catalog.deployed_job(kept, "* * * * *"))
    await project(pool, clock, catalog.cron_job(gone, "* * * * *", deleted=True))
    assert await timer_row(pool, gone) is None
    # a tombstone stays a tombstone: a late, older state does not bring it back
    await project(pool, clock, *catalog.deployed_job(gone, "*/2 * * * *"))
    assert await timer_row(pool, gone) is None

    await project(pool, clock, catalog.rule(auto_stop=True, weekdays=["mon"], stop_time="19:00"))
    await project(pool, clock, catalog.environment_deleted())
    clock.advance(days=8)
    assert await fire(pool, clock) == 0
    # an event of the deleted environment arriving late arms nothing
    await project(pool, clock, *catalog.deployed_job(uuid.uuid4(), "* * * * *"))
    clock.advance(minutes=2)
    assert await fire(pool, clock) == 0


async def test_a_spring_forward_and_a_fall_back_night_each_fire_once(pool) -> None:
    catalog = Catalog()
    for start, end in (
        (utc(2026, 3, 28, 12), utc(2026, 3, 30, 12)),  # Paris springs forward on the 29th
        (utc(2026, 10, 24, 12), utc(2026, 10, 26, 12)),  # and falls back on the 25th
    ):
        clock, job = HandClock(start), uuid.uuid4()
        await project(pool, clock, *catalog.deployed_job(job, "30 2 * * *", "Europe/Paris"))
        while clock.at < end:  # the loop runs every 5 minutes through both nights
            clock.advance(minutes=5)
            await fire(pool, clock)
        fired = [c["scheduled_at"] for c in await commands(pool) if c["service_id"] == str(job)]
        assert len(set(fired)) == len(fired) == 2, fired  # one a night, never two, never none


async def test_rule_timers_send_stop_and_start_commands(pool, clock) -> None:
    catalog = Catalog()
    # 2026-01-05 is a Monday; 19:00 and 08:00 in Paris are 18:00 and 07:00 UTC
    await project(
        pool,
        clock,
        catalog.rule(
            auto_stop=True,
            auto_start=True,
            weekdays=["mon", "tue"],
            stop_time="19:00",
            start_time="08:00",
            timezone="Europe/Paris",
        ),
    )
    env = catalog.environment_id
    assert (await timer_row(pool, env, "env_stop"))["next_fire_at"] == utc(2026, 1, 5, 18)
    assert (await timer_row(pool, env, "env_start"))["next_fire_at"] == utc(2026, 1, 6, 7)
    clock.at = utc(2026, 1, 5, 18, 0, 1)
    assert await fire(pool, clock) == 1
    clock.at = utc(2026, 1, 6, 7, 0, 1)
    assert await fire(pool, clock) == 1
    sent = await commands(pool)
    assert [(c["type"], c["action"], c["scheduled_at"]) for c in sent] == [
        ("scheduler.EnvironmentActionRequested", "stop", "2026-01-05T18:00:00Z"),
        ("scheduler.EnvironmentActionRequested", "deploy", "2026-01-06T07:00:00Z"),
    ]
    # auto_start turned off: its timer goes, the stop stays
    await project(
        pool,
        clock,
        catalog.rule(
            auto_stop=True, weekdays=["mon", "tue"], stop_time="19:00", start_time="08:00"
        ),
    )
    assert await timer_row(pool, env, "env_start") is None
    assert (await timer_row(pool, env, "env_stop"))["next_fire_at"] == utc(2026, 1, 6, 19)


async def test_the_timer_loop_wakes_when_a_timer_is_armed(scheduler_db) -> None:
    """The worker's loop with a clock just before a minute: it sleeps until the instant, fires,
    and the command is in the outbox (no test-driven rounds)."""
    from slipway_scheduler.worker import TimerLoop

    dsn, pool = scheduler_db

    class Near:
        """The system clock shifted so that the next minute is ~1 s away."""

        def __init__(self) -> None:
            now = datetime.now(UTC)
            target = now.replace(second=59, microsecond=0)
            self.offset = target - now

        def now(self) -> datetime:
            return datetime.now(UTC) + self.offset

    clock = Near()
    loop = TimerLoop(pool, dsn, clock, batch_size=10, poll_s=30)
    task = asyncio.create_task(loop.run())
    try:
        catalog, job = Catalog(), uuid.uuid4()
        await asyncio.sleep(0)
        await project(pool, clock, *catalog.deployed_job(job, "* * * * *"))  # type: ignore[arg-type]
        deadline = asyncio.get_running_loop().time() + 20
        while not await commands(pool):
            assert asyncio.get_running_loop().time() < deadline, "the loop did not fire"
            await asyncio.sleep(0.1)
        assert (await commands(pool))[0]["service_id"] == str(job)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]


async def test_after_a_down_period_a_rule_acts_once_for_its_latest_side(pool) -> None:
    catalog = Catalog()
    env = catalog.environment_id
    # Friday 2026-01-09 12:00: stop at 19:00, start at 08:00 on weekdays, UTC
    clock = HandClock(utc(2026, 1, 9, 12))
    rule = catalog.rule(
        auto_stop=True, auto_start=True, weekdays=WEEKDAYS, stop_time="19:00", start_time="08:00"
    )
    await project(pool, clock, rule)

    clock.at = utc(2026, 1, 12, 10)  # back Monday 10:00: Friday's stop and Monday's start missed
    assert await fire(pool, clock) == 2
    sent = await commands(pool)
    assert [(c["action"], c["scheduled_at"]) for c in sent] == [("deploy", "2026-01-12T08:00:00Z")]
    assert (await timer_row(pool, env, "env_stop"))["next_fire_at"] == utc(2026, 1, 12, 19)

    clock.at = utc(2026, 1, 14, 20)  # back Wednesday 20:00: the last missed is Wednesday's stop
    assert await fire(pool, clock) == 2
    sent = await commands(pool)
    assert [(c["action"], c["scheduled_at"]) for c in sent][1:] == [
        ("stop", "2026-01-14T19:00:00Z")
    ]
    stop = await timer_row(pool, env, "env_stop")
    assert stop["last_lateness_ms"] == 3600 * 1000


async def test_a_job_and_its_deployed_status_applied_side_by_side_arm_its_timer(
    pool, clock
) -> None:
    """The catalog's and the deployer's consumer groups commit side by side: the second
    waits for the first's decision and reads what it committed."""
    catalog, job = Catalog(), uuid.uuid4()
    projection = Projection(clock)
    async with pool.acquire() as conn:
        first = conn.transaction()
        await first.start()
        await projection.apply(conn, catalog.cron_job(job, "* * * * *"))
        second = asyncio.create_task(project(pool, clock, catalog.service_status(job)))
        deadline = asyncio.get_running_loop().time() + 30
        while not await _waiting_for_a_lock(pool):
            assert not second.done(), "the second decision did not wait for the first"
            assert asyncio.get_running_loop().time() < deadline, "nothing waits for the lock"
            await asyncio.sleep(0.02)
        await first.commit()
    await second
    assert (await timer_row(pool, job))["next_fire_at"] == utc(2026, 1, 5, 9, 1)


async def _waiting_for_a_lock(pool: asyncpg.Pool) -> bool:
    async with pool.acquire() as conn:
        return bool(
            await conn.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            )
        )
