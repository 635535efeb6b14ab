"""Live log lines of a service: a bounded buffer of recent lines fanned out to subscribers, fed by
tailing the files the service's stdout and stderr are appended to.

Invariants:
- Memory is bounded: ``capacity`` recent lines, and at most ``queue_size`` pending lines per
  subscriber (a slow subscriber loses its oldest pending lines, never blocks the service).
- A subscriber sees the buffered lines, then every line published after, with no duplicate and
  no gap between the two (snapshot and subscription happen without an await in between).
- Disk is bounded: a log file larger than ``max_bytes`` is truncated once read to its end (the
  writer appends, so it carries on at the new end; lines written between the read and the
  truncation are lost, an accepted trade-off of keeping the service decoupled from the runtime).
- Files, not pipes: a service outlives the deployer (a dead reader would make its writes fail).
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
from collections import deque
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from slipway_deployer.adapters.runtime.base import LogLine

Stream = Literal["stdout", "stderr"]
_MAX_LINE = 16_384
_CHUNK = 1 << 20


class LogHub:
    def __init__(self, *, capacity: int = 1000, queue_size: int = 1000) -> None:
        self._recent: deque[LogLine] = deque(maxlen=capacity)
        self._queue_size = queue_size
        self._subscribers: set[asyncio.Queue[LogLine | None]] = set()

    def publish(self, stream: Stream, text: str) -> None:
        line = LogLine(stream=stream, text=text, at=datetime.now(UTC))
        self._recent.append(line)
        for queue in self._subscribers:
            if queue.full():
                queue.get_nowait()  # drop the oldest pending line of a slow subscriber
            queue.put_nowait(line)

    def recent(self, n: int | None = None) -> list[LogLine]:
        lines = list(self._recent)
        return lines if n is None else lines[-n:]

    def close(self) -> None:
        """End every subscription (the service is gone)."""
        for queue in self._subscribers:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(None)
        self._subscribers.clear()

    async def follow(self) -> AsyncIterator[LogLine]:
        """The buffered lines, then live ones until ``close``."""
        queue: asyncio.Queue[LogLine | None] = asyncio.Queue(self._queue_size)
        backlog = list(self._recent)
        self._subscribers.add(queue)
        try:
            for line in backlog:
                yield line
            while (live := await queue.get()) is not None:
                yield live
        finally:
            self._subscribers.discard(queue)


class FileTail:
    """Publishes the complete lines appended to ``path`` since the last ``poll``."""

    def __init__(
        self, path: Path, stream: Stream, hub: LogHub, *, max_bytes: int, offset: int = 0
    ) -> None:
        self._path, self._stream, self._hub = path, stream, hub
        self._max_bytes = max_bytes
        self._offset = offset
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""

    def poll(self) -> None:
        size_now = size(self._path)
        if size_now < self._offset:  # truncated
            self._offset = 0
        while self._offset < size_now:
            with open(self._path, "rb") as f:
                f.seek(self._offset)
                chunk = f.read(_CHUNK)
            if not chunk:
                break
            self._offset += len(chunk)
            self._emit(self._decoder.decode(chunk))
        if self._offset > self._max_bytes:
            with contextlib.suppress(OSError):
                os.truncate(self._path, 0)
            self._offset = 0

    def _emit(self, text: str) -> None:
        *lines, self._pending = (self._pending + text).split("\n")
        if len(self._pending) > _MAX_LINE:
            lines, self._pending = [*lines, self._pending], ""
        for line in lines:
            if line := line.rstrip("\r"):
                self._hub.publish(self._stream, line)

    async def run(self, interval_s: float) -> None:
        while True:
            self.poll()
            await asyncio.sleep(interval_s)


def size(path: Path) -> int:
    """Where a tail of ``path`` starting now begins (0 for a file not written yet)."""
    try:
        return path.stat().st_size
    except OSError:
        return 0
