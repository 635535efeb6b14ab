"""Leadership and wake-ups against the real PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import asyncpg
import pytest

from slipway_libs import leadership

pytestmark = pytest.mark.integration

LOCK = 4_242_001


@pytest.fixture
async def dsn(database_factory) -> str:
    return await database_factory("leadership")


async def _wait_for(event: asyncio.Event, what: str, timeout_s: float = 10.0) -> None:
    try:
        await asyncio.wait_for(event.wait(), timeout_s)
    except TimeoutError:
        pytest.fail(f"{what} within {timeout_s:g} s")


class Term:
    """A leader's work that says when it began, on which backend, and how it ended."""

    def __init__(self) -> None:
        self.began = asyncio.Event()
        self.cancelled = asyncio.Event()
        self.backend: int | None = None

    async def __call__(self, conn: asyncpg.Connection) -> None:
        self.backend = await conn.fetchval("SELECT pg_backend_pid()")
        self.began.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise


async def test_a_standby_leads_once_the_leader_s_connection_is_gone(dsn: str) -> None:
    first, second = Term(), Term()
    leader = asyncio.create_task(
        leadership.lead(dsn=dsn, lock=LOCK, work=first, contend_every_s=0.05)
    )
    await _wait_for(first.began, "the first process did not lead")
    standby = asyncio.create_task(
        leadership.lead(dsn=dsn, lock=LOCK, work=second, contend_every_s=0.05)
    )
    await asyncio.sleep(0.3)  # several contention rounds: the lock is held
    assert not second.began.is_set()

    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute("SELECT pg_terminate_backend($1)", first.backend)
    finally:
        await admin.close()

    # the old leader steps down as soon as its connection is seen closed, work cancelled...
    await _wait_for(first.cancelled, "the old leader's work was not cancelled")
    with pytest.raises(leadership.ConnectionLost):
        await asyncio.wait_for(leader, 5)
    # ...and the standby takes over
    await _wait_for(second.began, "the standby did not take over")
    standby.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await standby
    assert second.cancelled.is_set()


async def test_a_term_whose_work_fails_releases_the_lock(dsn: str) -> None:
    async def failing(_: asyncpg.Connection) -> None:
        raise LookupError("a bug")

    with pytest.raises(LookupError):
        await leadership.lead(dsn=dsn, lock=LOCK, work=failing, contend_every_s=0.05)
    taken = Term()
    task = asyncio.create_task(
        leadership.lead(dsn=dsn, lock=LOCK, work=taken, contend_every_s=0.05)
    )
    await _wait_for(taken.began, "the lock was not released")
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_a_notification_wakes_the_leader_and_a_lost_one_costs_one_poll(dsn: str) -> None:
    channel = f"wake_{uuid.uuid4().hex[:8]}"
    wake = leadership.Wake(poll_s=0.2)
    listening = asyncio.Event()

    async def work(_: asyncpg.Connection) -> None:
        listening.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(
        leadership.lead(
            dsn=dsn, lock=LOCK, work=work, contend_every_s=0.05, listeners={channel: wake}
        )
    )
    try:
        await _wait_for(listening, "the process did not lead")
        assert not await wake.wait()  # nothing notified: the poll ends the wait
        admin = await asyncpg.connect(dsn)
        try:
            await admin.execute(f"NOTIFY {channel}")
        finally:
            await admin.close()
        assert await wake.wait(timeout_s=10)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_follow_listens_until_its_connection_is_lost(dsn: str) -> None:
    channel = f"follow_{uuid.uuid4().hex[:8]}"
    payloads: list[str] = []
    heard = asyncio.Event()

    def listener(_conn: object, _pid: int, _channel: str, payload: str) -> None:
        payloads.append(payload)
        heard.set()

    follower = asyncio.create_task(leadership.follow(dsn=dsn, listeners={channel: listener}))
    admin = await asyncpg.connect(dsn)
    try:
        for _ in range(100):  # until its LISTEN is in place
            await admin.execute("SELECT pg_notify($1, 'hello')", channel)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(heard.wait(), 0.1)
            if heard.is_set():
                break
        assert payloads and payloads[0] == "hello"
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE query LIKE 'LISTEN%' AND datname = current_database()"
        )
        with pytest.raises(leadership.ConnectionLost):
            await asyncio.wait_for(follower, 10)
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError, leadership.ConnectionLost):
            await follower
        await admin.close()


async def test_follow_says_when_it_listens_so_nothing_sent_after_is_lost(dsn: str) -> None:
    """A loop that sleeps until notified looks again when the subscription is in place: a
    notification sent before it (the process starting, the connection re-made) is lost, and
    one sent after ``on_listening`` is heard (a timer armed at a scheduler's start fired up to
    ``poll_s`` late before)."""
    channel = f"follow_{uuid.uuid4().hex[:8]}"
    heard, listening = asyncio.Event(), asyncio.Event()
    admin = await asyncpg.connect(dsn)
    await admin.execute("SELECT pg_notify($1, 'before')", channel)  # nobody listens yet
    follower = asyncio.create_task(
        leadership.follow(
            dsn=dsn,
            listeners={channel: lambda *_: heard.set()},
            on_listening=listening.set,
        )
    )
    try:
        await _wait_for(listening, "on_listening was not called")
        assert not heard.is_set(), "a notification sent before LISTEN cannot be heard"
        await admin.execute("SELECT pg_notify($1, 'after')", channel)
        await _wait_for(heard, "the first notification after on_listening was not heard")
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError, leadership.ConnectionLost):
            await follower
        await admin.close()
