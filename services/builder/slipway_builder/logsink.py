"""Build log lines to the log topic as they happen (through the outbox, in small batches), with
the last lines kept for the failure event. Secrets (a git token) are redacted before anything
is written."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import uuid
from datetime import UTC, datetime

import asyncpg

from slipway_contracts.events.logs import LogLine, LogLinesAppended
from slipway_libs import outbox

SOURCE = "builder"


class BuildLog:
    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        build: asyncpg.Record,
        secrets: list[str],
        flush_every_s: float = 0.2,
        batch: int = 200,
        keep: int = 30,
    ) -> None:
        self._pool = pool
        self._build = build
        self._secrets = [s for s in secrets if s]
        self._pending: list[LogLine] = []
        self._flush_every_s = flush_every_s
        self._batch = batch
        self.last_lines: collections.deque[str] = collections.deque(maxlen=keep)
        self._task: asyncio.Task[None] | None = None

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
        if len(self._pending) >= self._batch:
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
        await self.flush()

    async def _every(self) -> None:
        while True:
            await asyncio.sleep(self._flush_every_s)
            await self.flush()

    async def flush(self) -> None:
        if not self._pending:
            return
        lines, self._pending = self._pending, []
        build = self._build
        payload = LogLinesAppended(
            kind="build",
            environment_id=build["environment_id"],
            service_id=build["service_id"],
            deployment_id=build["deployment_id"],
            build_id=build["id"],
            lines=lines,
        )
        key: uuid.UUID = build["deployment_id"] or build["id"]
        async with self._pool.acquire() as conn, conn.transaction():
            await outbox.publish(
                conn,
                payload,
                subject=str(key),
                source=SOURCE,
                organization_id=build["organization_id"],
            )
