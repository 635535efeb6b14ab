"""Live logs: what the services print, to the log topic (``logs.lines.v1``, kind ``live``, keyed
by service), in small batches through the outbox. One follower per service; it ends when the
service is deleted or forgotten. Job runs and database servers are followed the same way."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

import asyncpg
import structlog

from slipway_contracts.events.logs import LogLine, LogLinesAppended
from slipway_deployer.adapters.runtime import Databases, Runtime, RuntimeFailure
from slipway_deployer.adapters.runtime import LogLine as RuntimeLine
from slipway_libs import outbox

log = structlog.get_logger(__name__)
SOURCE = "deployer"
Source = Callable[[], AsyncIterator[RuntimeLine]]


class Owner(Protocol):
    """Whose lines they are: a deployment, a job run or a service's status, which each name
    their environment and organization."""

    @property
    def environment_id(self) -> uuid.UUID: ...
    @property
    def organization_id(self) -> uuid.UUID: ...


class LiveLogs:
    """The runtime (or databases) to follow is the caller's: the one of the service's cluster."""

    def __init__(self, pool: asyncpg.Pool, *, flush_every_s: float = 0.5, batch: int = 500) -> None:
        self._pool = pool
        self._flush_every_s = flush_every_s
        self._batch = batch
        self._followers: dict[uuid.UUID, asyncio.Task[None]] = {}

    def follow_service(self, owner: Owner, service_id: uuid.UUID, runtime: Runtime) -> None:
        self._start(owner, service_id, lambda: runtime.logs(str(service_id)))

    def follow_job(self, owner: Owner, service_id: uuid.UUID, runtime: Runtime) -> None:
        self.forget(service_id)  # a job's run has a fresh buffer every time
        self._start(owner, service_id, lambda: runtime.logs(str(service_id)), wait_s=30)

    def follow_database(self, owner: Owner, service_id: uuid.UUID, databases: Databases) -> None:
        self._start(owner, service_id, lambda: databases.logs(str(service_id)))

    def forget(self, service_id: uuid.UUID) -> None:
        task = self._followers.pop(service_id, None)
        if task is not None:
            task.cancel()

    async def aclose(self) -> None:
        tasks = list(self._followers.values())
        self._followers.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _start(
        self, owner: Owner, service_id: uuid.UUID, source: Source, wait_s: float = 0
    ) -> None:
        current = self._followers.get(service_id)
        if current is not None and not current.done():
            return
        ids = {"environment_id": owner.environment_id, "organization_id": owner.organization_id}
        task = asyncio.create_task(self._follow(service_id, ids, source, wait_s))
        self._followers[service_id] = task

    async def _follow(
        self, service_id: uuid.UUID, ids: dict[str, Any], source: Source, wait_s: float
    ) -> None:
        pending: list[LogLine] = []
        flusher = asyncio.create_task(self._flush_every(service_id, ids, pending))
        try:
            async for line in await _open(source, wait_s):
                pending.append(LogLine(at=line.at, stream=line.stream, text=line.text[:16_000]))
                if len(pending) >= self._batch:
                    await self._flush(service_id, ids, pending)
        except RuntimeFailure:
            pass  # the service is gone
        finally:
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await flusher
            with contextlib.suppress(Exception):
                await asyncio.shield(self._flush(service_id, ids, pending))

    async def _flush_every(
        self, service_id: uuid.UUID, ids: dict[str, Any], pending: list[LogLine]
    ) -> None:
        while True:
            await asyncio.sleep(self._flush_every_s)
            try:
                await self._flush(service_id, ids, pending)
            except (OSError, asyncpg.PostgresError) as exc:  # kept, tried again next time
                log.warning("livelogs.flush_failed", error=str(exc))

    async def _flush(
        self, service_id: uuid.UUID, ids: dict[str, Any], pending: list[LogLine]
    ) -> None:
        if not pending:
            return
        lines = pending[:]
        async with self._pool.acquire() as conn, conn.transaction():
            await outbox.publish(
                conn,
                LogLinesAppended(
                    kind="live",
                    environment_id=ids["environment_id"],
                    service_id=service_id,
                    lines=lines,
                ),
                subject=str(service_id),
                source=SOURCE,
                organization_id=ids["organization_id"],
            )
        del pending[: len(lines)]


async def _open(source: Source, wait_s: float) -> AsyncIterator[RuntimeLine]:
    """The source's iterator; a job's log buffer appears only once its run starts."""
    deadline = asyncio.get_running_loop().time() + wait_s
    while True:
        iterator = source()
        try:
            first = await anext(iterator)
        except RuntimeFailure:
            if asyncio.get_running_loop().time() >= deadline:
                raise
            await asyncio.sleep(0.1)
            continue
        except StopAsyncIteration:
            return _empty()
        return _chain(first, iterator)


async def _chain(
    first: RuntimeLine, rest: AsyncIterator[RuntimeLine]
) -> AsyncIterator[RuntimeLine]:
    yield first
    async for line in rest:
        yield line


async def _empty() -> AsyncIterator[RuntimeLine]:
    return
    yield  # pragma: no cover
