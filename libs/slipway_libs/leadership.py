"""Leadership and wake-ups over PostgreSQL: one process leads (a database's outbox relay, the
deployer's worker) while the others wait as hot standbys, and notifications wake whoever waits
for work, with a short poll behind them.

Invariants:
- **One leader per lock.** The leader holds a session advisory lock on a connection of its own,
  never a pooled one (the pool would lend the session, and with it the lock, to others).
  PostgreSQL releases the lock when that session ends, so a standby polling for it takes over
  when the leader dies.
- **Lost connection, lost leadership.** The moment the leader's connection is seen closed, its
  work is cancelled and ``lead`` raises ``ConnectionLost`` (transient: the caller backs off and
  contends again). A leader never goes on acting while another process may hold the lock; its
  work's own queries on the connection fail as well, whichever comes first.
- **Every session advisory lock is taken here**: ``lead`` for a leader with standbys,
  ``exclusive`` for one-at-a-time work (migration runs) that waits its turn.
- **A notification only shortens a wait.** LISTEN is per session, so the listeners sit on that
  same connection; a notification can be missed (sent before LISTEN, during a reconnect), so a
  ``Wake`` ends every wait after ``poll_s`` at most and the waiter reads the truth from the
  tables.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

import asyncpg
import structlog

from slipway_libs.db import connect
from slipway_libs.errors import RetryableError

log = structlog.get_logger(__name__)

# asyncpg calls a listener with (connection, server pid, channel, payload)
Listener = Callable[[asyncpg.Connection, int, str, str], None]
Work = Callable[[asyncpg.Connection], Awaitable[None]]


class ConnectionLost(RetryableError):
    """The session holding the lock (or the LISTEN) ended: contend (or listen) again."""


class Wake:
    """Set by a notification (it is an asyncpg listener) or by the process itself; a wait ends
    when it is set or after ``poll_s``, whichever comes first."""

    def __init__(self, poll_s: float) -> None:
        self.poll_s = poll_s
        self._event = asyncio.Event()

    def __call__(self, *_: object) -> None:
        self._event.set()

    def set(self) -> None:
        self._event.set()

    def clear(self) -> None:
        self._event.clear()

    def is_set(self) -> bool:
        return self._event.is_set()

    async def wait(self, timeout_s: float | None = None) -> bool:
        """True when set, False after ``timeout_s`` (``poll_s`` by default) without."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.poll_s if timeout_s is None else timeout_s):
                await self._event.wait()
        return self._event.is_set()


async def lead(
    *,
    dsn: str,
    lock: int,
    work: Work,
    contend_every_s: float,
    listeners: Mapping[str, Listener] | None = None,
) -> None:
    """One term: wait for ``lock``, listen on ``listeners``' channels, then run ``work`` with the
    leader's connection until it returns or fails; the connection lost ends it (cancelled) with
    ``ConnectionLost``."""
    async with _session(dsn) as (conn, lost):
        # polling, not an event: the lock's release happens in another process
        while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", lock):  # noqa: ASYNC110
            await asyncio.sleep(contend_every_s)
        for channel, listener in (listeners or {}).items():
            await conn.add_listener(channel, listener)
        await _unless_lost(work(conn), lost)


async def follow(
    *,
    dsn: str,
    listeners: Mapping[str, Listener],
    on_listening: Callable[[], None] | None = None,
) -> None:
    """Listen on a connection of its own until it is lost (``ConnectionLost``).

    ``on_listening`` is called once every channel is subscribed: a notification sent before that
    (while the process starts or the connection is re-made) is lost, so a loop that sleeps until
    notified must look again then instead of waiting for its poll."""
    async with _session(dsn) as (conn, lost):
        for channel, listener in listeners.items():
            await conn.add_listener(channel, listener)
        if on_listening is not None:
            on_listening()
        await lost.wait()
        raise ConnectionLost("the listening connection was closed")


@contextlib.asynccontextmanager
async def exclusive(conn: asyncpg.Connection, lock: int) -> AsyncIterator[None]:
    """``lock`` held on ``conn`` for the block, waiting as long as another session holds it: one
    at a time (migration runs), where nobody stands by to take over."""
    await conn.execute("SELECT pg_advisory_lock($1)", lock)
    try:
        yield
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", lock)


@contextlib.asynccontextmanager
async def _session(dsn: str) -> AsyncIterator[tuple[asyncpg.Connection, asyncio.Event]]:
    conn = await connect(dsn)
    lost = asyncio.Event()
    conn.add_termination_listener(lambda _: lost.set())
    try:
        yield conn, lost
    finally:
        with contextlib.suppress(Exception):
            await conn.close(timeout=2)


async def _unless_lost(work: Awaitable[None], lost: asyncio.Event) -> None:
    task = asyncio.ensure_future(work)
    watch = asyncio.create_task(lost.wait())
    try:
        done, _ = await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            return task.result()
        log.warning("leadership.connection_lost")
        raise ConnectionLost("the leader's connection was closed")
    finally:
        watch.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
