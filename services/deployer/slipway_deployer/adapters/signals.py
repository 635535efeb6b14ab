"""In-process wake-ups keyed by a string (a build id, a deployment id), fed by PostgreSQL
notifications. A waiter always re-reads the database after waking or timing out: a notification
only shortens the wait, it is never the source of truth (it can be missed)."""

from __future__ import annotations

import asyncio
import contextlib


class Signals:
    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    def set(self, key: str) -> None:
        event = self._events.pop(key, None)
        if event is not None:
            event.set()

    async def wait(self, key: str, *, timeout_s: float) -> None:
        event = self._events.setdefault(key, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await event.wait()
