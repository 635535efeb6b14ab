"""The worker's loop that polls git remotes for new commits (``usecases.git_polling``), in
every scheduler worker process at once: due branches are claimed with ``FOR UPDATE SKIP
LOCKED`` and leased, so processes share them and never poll one branch together.

Polls are minutes apart, so the loop only sleeps (no notification): until the earliest due
poll, at most ``discover_s``, the longest a newly deployed application waits for its first
poll's row (``discover`` adds it). A full batch is followed at once by the next one.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg

from slipway_libs import retry
from slipway_scheduler.usecases import git_polling

_MIN_WAIT_S = 0.05


class GitPollLoop:
    def __init__(
        self,
        pool: asyncpg.Pool,
        deps: git_polling.PollDeps,
        *,
        batch_size: int,
        concurrency: int,
        discover_s: float,
    ) -> None:
        self._pool = pool
        self._deps = deps
        self._batch_size = batch_size
        self._concurrency = concurrency
        self._discover_s = discover_s
        self._discovered_at: float | None = None

    async def run(self) -> None:
        while True:
            polled, wait = await retry.while_unreachable(self._round, event="git_polls.unavailable")
            if polled < self._batch_size:  # a full batch: more may be due at once
                await asyncio.sleep(wait)

    async def _round(self) -> tuple[int, float]:
        now = time.monotonic()
        if self._discovered_at is None or now - self._discovered_at >= self._discover_s:
            await git_polling.discover(self._pool, self._deps.clock)
            self._discovered_at = now
        polled = await git_polling.poll_due(
            self._pool, self._deps, limit=self._batch_size, concurrency=self._concurrency
        )
        due = await git_polling.next_due(self._pool)
        wait = self._discover_s
        if due is not None:
            # a due poll left unclaimed is another process's, being polled: no reason to spin
            wait = min(wait, max((due - self._deps.clock.now()).total_seconds(), _MIN_WAIT_S))
        return polled, wait
