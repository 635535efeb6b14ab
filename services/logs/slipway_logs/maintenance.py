"""The partition maintenance loop: one worker of the installation leads it (an advisory lock on
a connection of its own, ``slipway_libs.leadership``), the others stand by."""

from __future__ import annotations

import asyncio

import asyncpg
import structlog

from slipway_libs import leadership, retry
from slipway_logs.usecases import retention

log = structlog.get_logger(__name__)
_MAINTENANCE_LOCK = 0x5D3B_0006


class Maintenance:
    def __init__(
        self,
        pool: asyncpg.Pool,
        dsn: str,
        *,
        retention_days: int,
        days_ahead: int,
        every_s: float,
    ) -> None:
        self._pool = pool
        self._dsn = dsn
        self._retention_days = retention_days
        self._days_ahead = days_ahead
        self._every_s = every_s

    async def run(self) -> None:
        """Lead while the database lets it; after losing it (an outage), contend again."""
        await retry.forever(
            lambda: leadership.lead(
                dsn=self._dsn, lock=_MAINTENANCE_LOCK, work=self._lead, contend_every_s=5.0
            ),
            event="logs.maintenance_lost",
            backoff=retry.Backoff(1.0, 10.0),
        )

    async def _lead(self, _conn: asyncpg.Connection) -> None:
        log.info("logs.maintenance_leader")
        while True:
            await retry.while_unreachable(
                lambda: retention.maintain(
                    self._pool,
                    retention_days=self._retention_days,
                    days_ahead=self._days_ahead,
                ),
                event="logs.maintenance_unavailable",
            )
            await asyncio.sleep(self._every_s)
