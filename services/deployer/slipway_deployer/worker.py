"""The deployment worker: takes the head of each environment's queue, runs it, and keeps what it
runs watched.

- One worker per installation drives the local runtime (a session advisory lock: a second
  deployer process waits as a standby and takes over when the first dies).
- Woken by PostgreSQL notifications (a request queued, a build finished, a cancel asked) and by
  a short poll, so a lost notification costs at most ``poll_s``.
- On start (and on taking over) it adopts what the runtime still runs, then resumes every
  deployment left ONGOING or CANCELING: nothing stays ONGOING because a deployer died.
- A monitor keeps each service's running status (RUNNING, WARNING after a crash, ERROR...) in the
  database and tells subscribers when it changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable

import asyncpg
import structlog

from slipway_deployer.usecases import monitoring, queue, requests
from slipway_deployer.usecases.execution import BUILD_CHANNEL, Execution
from slipway_deployer.usecases.job_runs import JobRunner
from slipway_deployer.usecases.requests import CANCEL_CHANNEL, QUEUE_CHANNEL
from slipway_deployer.usecases.steps import Tools
from slipway_libs import leadership, retry

log = structlog.get_logger(__name__)
_WORKER_LOCK = 0x5D3B_0001


class Worker:
    """``make_tools`` runs once this worker leads: the local runtime locks its state dir."""

    def __init__(self, pool: asyncpg.Pool, dsn: str, make_tools: Callable[[], Tools]) -> None:
        self._pool = pool
        self._dsn = dsn
        self._make_tools = make_tools
        self.tools: Tools
        self._jobs: JobRunner
        self._running: dict[uuid.UUID, tuple[Execution, asyncio.Task[None]]] = {}
        self._wake = leadership.Wake(poll_s=1.0)  # waits take the settings' ``poll_s``
        self._leading = False  # while it leads: self.tools is this term's

    async def run(self) -> None:
        """Lead while the database lets it; after losing it (an outage), lead again."""
        await retry.forever(
            lambda: leadership.lead(
                dsn=self._dsn,
                lock=_WORKER_LOCK,
                work=self._lead,
                contend_every_s=1.0,
                listeners={
                    QUEUE_CHANNEL: self._wake,
                    CANCEL_CHANNEL: self._on_cancel,
                    BUILD_CHANNEL: self._on_build,
                },
            ),
            event="worker.database_lost",
            backoff=retry.Backoff(1.0, 1.0),
        )

    async def _lead(self, conn: asyncpg.Connection) -> None:
        log.info("worker.leader")
        self.tools = self._make_tools()
        self._jobs = JobRunner(self.tools)
        self._leading = True
        try:
            await self._take_over()
            await self._loop(conn)
        finally:
            self._leading = False
            await self._jobs.aclose()
            await self._stop_executions()
            await self.tools.live.aclose()
            await self.tools.runtimes.close()

    def _on_build(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        if self._leading:  # listening starts before the term's tools exist
            self.tools.signals.set(payload)

    async def _take_over(self) -> None:
        unfinished = await queue.take_over(self.tools)
        await self._jobs.recover()
        for row in unfinished:
            log.info("worker.resume", deployment_id=str(row.id), status=row.status)
            self._start(Execution(self.tools, row, canceling=row.status == "CANCELING"))

    async def _loop(self, conn: asyncpg.Connection) -> None:
        monitor = asyncio.create_task(self._monitor())
        loop = asyncio.get_running_loop()
        next_beat = loop.time()
        try:
            while True:
                try:
                    await self._claim()
                    await self._jobs.claim()
                except Exception:  # a bad row or a lost connection must not stop the queue
                    log.exception("worker.claim_failed")
                    await asyncio.sleep(1)
                await self._wake.wait(self.tools.settings.poll_s)
                self._wake.clear()
                if monitor.done():  # it ended on a bug (it rides out outages): so does the term
                    monitor.result()
                if loop.time() >= next_beat:
                    next_beat = loop.time() + self.tools.settings.reconcile_s
                    await conn.execute("SELECT 1", timeout=5)  # still the leader?
                    await queue.heartbeat(self.tools, list(self._running))
                    await self._reconcile()
        finally:
            monitor.cancel()

    async def _claim(self) -> None:
        free = self.tools.settings.max_parallel_deployments - len(self._running)
        if free <= 0:
            return
        # each plans itself: many start at once without holding the queue
        for row in await queue.claim(self.tools, free):
            self._start(Execution(self.tools, row))

    def _start(self, execution: Execution) -> None:
        async def run() -> None:
            try:
                await execution.run()
            finally:
                self._running.pop(execution.id, None)
                self._wake.set()

        self._running[execution.id] = (execution, asyncio.create_task(run()))

    def _on_cancel(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        entry = self._running.get(uuid.UUID(payload))
        if entry is not None and not entry[0].canceling:
            entry[0].canceling = True
            entry[1].cancel()

    async def _stop_executions(self) -> None:
        tasks = [task for _, task in self._running.values()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _reconcile(self) -> None:
        try:
            async with self.tools.pool.acquire() as conn, conn.transaction():
                queued = await requests.tear_down_orphans(conn)
        except retry.TRANSIENT_ERRORS as exc:  # tried again at the next beat; a bug is raised
            log.warning("worker.reconcile_failed", error=str(exc))
            return
        for row in queued:
            log.info(
                "worker.teardown",
                deployment_id=str(row.id),
                environment_id=str(row.environment_id),
            )

    async def _monitor(self) -> None:
        while True:
            await asyncio.sleep(self.tools.settings.monitor_s)
            try:
                await monitoring.observe(self.tools)
            except retry.TRANSIENT_ERRORS as exc:  # a bug is raised (it ends the term)
                log.warning("worker.monitor_failed", error=str(exc))
