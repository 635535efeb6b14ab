"""The worker's loops. The timer loop fires due timers, in every scheduler worker process at
once (no leader: ``usecases.firing`` claims with ``FOR UPDATE SKIP LOCKED``, so the processes
share the work and never fire one instant twice).

It sleeps until the earliest timer is due, or ``poll_s`` at most: a timer armed or re-armed by
the projection notifies ``scheduler_timers`` (listened to on a connection of its own,
``slipway_libs.leadership.follow``) and wakes it at once; a lost notification costs ``poll_s``.
A full batch is followed at once by the next one.

The delivery loop sends due webhook deliveries the same way (``usecases.delivering``: claimed
with ``FOR UPDATE SKIP LOCKED``, in every worker process at once), woken by
``scheduler_webhook_deliveries`` when the consumer writes deliveries or a redeliver is asked.

The expiry loop ends pull requests' previews past their time to live (``usecases.previewing``,
claimed with ``FOR UPDATE SKIP LOCKED``); expiries are hours apart, so it only polls.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime

import asyncpg
import structlog

from slipway_libs import leadership, retry
from slipway_libs.db import transaction
from slipway_scheduler.domain.timers import Clock
from slipway_scheduler.usecases import delivering, firing, previewing

log = structlog.get_logger(__name__)
_MIN_WAIT_S = 0.02


class TimerLoop:
    def __init__(
        self,
        pool: asyncpg.Pool,
        dsn: str,
        clock: Clock,
        *,
        batch_size: int,
        poll_s: float,
    ) -> None:
        self._pool = pool
        self._dsn = dsn
        self._clock = clock
        self._batch_size = batch_size
        self._wake = leadership.Wake(poll_s=poll_s)

    async def run(self) -> None:
        listener = asyncio.create_task(self._listen())
        try:
            while True:
                fired, due = await retry.while_unreachable(self._round, event="timers.unavailable")
                if fired < self._batch_size:  # a full batch: more may be due at once
                    await self._sleep_until(due)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    async def _round(self) -> tuple[int, datetime | None]:
        async with transaction(self._pool) as conn:
            fired = await firing.fire_due(conn, self._clock, limit=self._batch_size)
            return fired, await firing.next_due(conn)

    async def _sleep_until(self, due: datetime | None) -> None:
        timeout = self._wake.poll_s
        if due is not None:
            # a due timer left unfired is another process's, being fired: not a reason to spin
            timeout = min(timeout, max((due - self._clock.now()).total_seconds(), _MIN_WAIT_S))
        await self._wake.wait(timeout)
        self._wake.clear()

    async def _listen(self) -> None:
        await retry.forever(
            lambda: leadership.follow(
                dsn=self._dsn,
                listeners={firing.TIMERS_CHANNEL: self._wake},
                on_listening=self._wake.set,
            ),
            event="timers.listen_lost",
            backoff=retry.Backoff(1.0, 10.0),
        )


class DeliveryLoop:
    def __init__(
        self,
        pool: asyncpg.Pool,
        dsn: str,
        deps: delivering.DeliveryDeps,
        *,
        batch_size: int,
        poll_s: float,
    ) -> None:
        self._pool = pool
        self._dsn = dsn
        self._deps = deps
        self._batch_size = batch_size
        self._wake = leadership.Wake(poll_s=poll_s)

    async def run(self) -> None:
        listener = asyncio.create_task(self._listen())
        try:
            while True:
                sent = await retry.while_unreachable(self._round, event="deliveries.unavailable")
                if sent < self._batch_size:  # a full batch: more may be due at once
                    due = await retry.while_unreachable(
                        lambda: delivering.next_due(self._pool), event="deliveries.unavailable"
                    )
                    await self._sleep_until(due)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    async def _round(self) -> int:
        return await delivering.deliver_due(self._pool, self._deps, limit=self._batch_size)

    async def _sleep_until(self, due: datetime | None) -> None:
        timeout = self._wake.poll_s
        if due is not None:
            # a due delivery left unsent is another process's, being sent: no reason to spin
            wait = (due - self._deps.clock.now()).total_seconds()
            timeout = min(timeout, max(wait, _MIN_WAIT_S))
        await self._wake.wait(timeout)
        self._wake.clear()

    async def _listen(self) -> None:
        await retry.forever(
            lambda: leadership.follow(
                dsn=self._dsn,
                listeners={delivering.DELIVERIES_CHANNEL: self._wake},
                on_listening=self._wake.set,
            ),
            event="deliveries.listen_lost",
            backoff=retry.Backoff(1.0, 10.0),
        )


class PreviewExpiryLoop:
    def __init__(
        self, pool: asyncpg.Pool, clock: Clock, *, poll_s: float, batch_size: int = 100
    ) -> None:
        self._pool = pool
        self._clock = clock
        self._poll_s = poll_s
        self._batch_size = batch_size

    async def run(self) -> None:
        while True:
            expired, due = await retry.while_unreachable(self._round, event="previews.unavailable")
            if expired < self._batch_size:  # a full batch: more may be due at once
                wait = self._poll_s
                if due is not None:
                    wait = min(wait, max((due - self._clock.now()).total_seconds(), _MIN_WAIT_S))
                await asyncio.sleep(wait)

    async def _round(self) -> tuple[int, datetime | None]:
        async with transaction(self._pool) as conn:
            expired = await previewing.expire_due(conn, self._clock, limit=self._batch_size)
            return expired, await previewing.next_expiry(conn)
