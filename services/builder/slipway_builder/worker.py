"""The build worker: takes queued builds in order, at most ``max_parallel_builds`` at once
(across worker processes: claims are serialized in the database), each run by the ``Builds``
use case in a task of its own.

- Woken by a notification when a build is queued, with a poll behind it (a lost notification
  costs at most the poll). Builders run in parallel: no leadership, only the wake.
- On start it recovers what a dead worker on this host left RUNNING.
- A cancel asked for a running build cancels its task (once: a second cancel would cut short the
  process group's stop or the end's record).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import uuid

import asyncpg
import structlog

from slipway_builder.usecases.builds import Builds
from slipway_builder.usecases.commands import WAKE_CHANNEL
from slipway_libs import leadership
from slipway_libs.db import TRANSIENT_DB_ERRORS

log = structlog.get_logger(__name__)


class Worker:
    def __init__(self, *, pool: asyncpg.Pool, builds: Builds, max_parallel: int) -> None:
        self._pool = pool
        self._builds = builds
        self._max_parallel = max_parallel
        self._running: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._canceled: set[uuid.UUID] = set()
        self._wake = leadership.Wake(poll_s=0.5)

    async def run(self) -> None:
        await self._builds.recover()
        watcher = asyncio.create_task(self._watch_cancels())
        listener = await self._pool.acquire()
        await listener.add_listener(WAKE_CHANNEL, self._wake)
        try:
            while True:
                try:
                    await self._fill_slots()
                except TRANSIENT_DB_ERRORS as exc:  # the builds running go on; claims resume later
                    log.warning("executor.claim_failed", error=repr(exc))
                await self._wake.wait()
                self._wake.clear()
        finally:
            with contextlib.suppress(Exception):
                await listener.remove_listener(WAKE_CHANNEL, self._wake)
            await self._pool.release(listener)
            watcher.cancel()
            for task in self._running.values():
                task.cancel()
            await asyncio.gather(watcher, *self._running.values(), return_exceptions=True)

    async def _fill_slots(self) -> None:
        while len(self._running) < self._max_parallel:
            build = await self._builds.claim()
            if build is None:
                return
            task = asyncio.create_task(self._builds.run(build))
            self._running[build.id] = task
            task.add_done_callback(functools.partial(self._done, build.id))

    def _done(self, build_id: uuid.UUID, _: object = None) -> None:
        self._running.pop(build_id, None)
        self._canceled.discard(build_id)
        self._wake.set()

    async def _watch_cancels(self) -> None:
        while True:
            await asyncio.sleep(0.3)
            if not self._running:
                continue
            try:
                requested = await self._builds.cancels_requested(list(self._running))
            except TRANSIENT_DB_ERRORS as exc:
                log.warning("executor.cancel_watch_failed", error=repr(exc))
                continue
            for build_id in requested:
                task = self._running.get(build_id)
                if task is not None and build_id not in self._canceled:
                    # once: a second cancel would cut short the group's stop or the end's record
                    self._canceled.add(build_id)
                    task.cancel()
