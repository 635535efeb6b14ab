"""Build log lines to the log topic as they happen (through the outbox, in small batches), with
the last lines kept for the failure event. Secrets (a git token) are redacted before anything
is written. While the database is unreachable the lines wait in memory (up to ``max_pending``;
beyond that the oldest go, and a line says how many) and the build goes on."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
import uuid
from datetime import UTC, datetime

import asyncpg
import structlog

from slipway_builder.domain.builds import Build
from slipway_contracts.events.logs import LogLine, LogLinesAppended
from slipway_libs import outbox, retry
from slipway_libs.db import TRANSIENT_DB_ERRORS

log = structlog.get_logger(__name__)

SOURCE = "builder"
_FINAL_FLUSH = retry.Backoff(0.5, 8.0)  # the waits between the last flush's attempts


class BuildLog:
    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        build: Build,
        secrets: list[str],
        flush_every_s: float = 0.2,
        batch: int = 200,
        keep: int = 30,
        max_pending: int = 20_000,
    ) -> None:
        self._pool = pool
        self._build = build
        self._secrets = [s for s in secrets if s]
        self._pending: list[LogLine] = []
        self._flush_every_s = flush_every_s
        self._batch = batch
        self.last_lines: collections.deque[str] = collections.deque(maxlen=keep)
        self._task: asyncio.Task[None] | None = None
        self._max_pending = max_pending
        self._dropped = 0
        self._retry_at = 0.0  # after a failed write, no new attempt before this (monotonic)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    async def line(self, stream: str, text: str) -> None:
        text = self.redact(text)[:8000]
        self.last_lines.append(text)
        self._pending.append(
            LogLine(
                at=datetime.now(UTC), stream="stderr" if stream == "stderr" else "stdout", text=text
            )
        )
        if len(self._pending) >= self._batch and time.monotonic() >= self._retry_at:
            await self.flush()

    async def system(self, text: str) -> None:
        text = self.redact(text)
        self.last_lines.append(text)
        self._pending.append(LogLine(at=datetime.now(UTC), stream="system", text=text))

    async def __aenter__(self) -> BuildLog:
        self._task = asyncio.create_task(self._every())
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        # the build's end is recorded: the database is back, or is soon
        for delay in (0.0, *_FINAL_FLUSH.delays(limit=5)):
            await asyncio.sleep(delay)
            if await self.flush():
                return
        log.warning("build_log.lines_lost", build_id=str(self._build.id), lines=self._unsent())

    async def _every(self) -> None:
        while True:
            await asyncio.sleep(self._flush_every_s)
            if time.monotonic() >= self._retry_at:
                await self.flush()

    async def flush(self) -> bool:
        """Write what is pending; False (the lines kept) when the database cannot be reached."""
        if not self._pending:
            return True
        lines, self._pending = self._pending, []
        try:
            await self._write(self._dropped_note() + lines)
        except TRANSIENT_DB_ERRORS as exc:
            self._keep(lines, exc)
            return False
        self._dropped, self._retry_at = 0, 0.0
        return True

    def _dropped_note(self) -> list[LogLine]:
        if not self._dropped:
            return []
        text = f"{self._dropped} log lines dropped while the database was unreachable"
        return [LogLine(at=datetime.now(UTC), stream="system", text=text)]

    def _keep(self, lines: list[LogLine], exc: BaseException) -> None:
        pending = lines + self._pending
        excess = max(0, len(pending) - self._max_pending)
        self._pending, self._dropped = pending[excess:], self._dropped + excess
        self._retry_at = time.monotonic() + 2.0
        log.warning("build_log.write_failed", build_id=str(self._build.id), error=repr(exc))

    def _unsent(self) -> int:
        return len(self._pending) + self._dropped

    async def _write(self, lines: list[LogLine]) -> None:
        """One event per ``batch`` lines (what an outage held back can be many), all at once."""
        build = self._build
        key: uuid.UUID = build.deployment_id or build.id
        async with self._pool.acquire() as conn, conn.transaction():
            for start in range(0, len(lines), self._batch):
                payload = LogLinesAppended(
                    kind="build",
                    environment_id=build.environment_id,
                    service_id=build.service_id,
                    deployment_id=build.deployment_id,
                    build_id=build.id,
                    lines=lines[start : start + self._batch],
                )
                await outbox.publish(
                    conn,
                    payload,
                    subject=str(key),
                    source=SOURCE,
                    organization_id=build.organization_id,
                )
