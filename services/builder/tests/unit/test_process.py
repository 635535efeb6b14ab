"""Child processes of a build: lines streamed, whole group killed on timeout and on cancel."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from slipway_libs.process import ProcessTimeout, run_process
from slipway_libs.testing.processes import is_gone

ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}


async def test_lines_of_both_streams_arrive_and_the_group_id_is_reported() -> None:
    lines: list[tuple[str, str]] = []
    groups: list[int] = []

    async def sink(stream: str, text: str) -> None:
        lines.append((stream, text))

    async def started(pgid: int) -> None:
        groups.append(pgid)

    result = await run_process(
        ["sh", "-c", "echo one; echo two >&2; printf 'a\\rb\\n'; exit 4"],
        env=ENV,
        on_line=sink,
        timeout_s=10,
        on_start=started,
    )
    assert result.returncode == 4 and len(groups) == 1
    assert ("stdout", "one") in lines and ("stderr", "two") in lines
    assert [t for s, t in lines if s == "stdout"] == ["one", "a", "b"]


def _children(pid_file: Path) -> list[int]:
    return [int(pid) for pid in pid_file.read_text().split()] if pid_file.exists() else []


def _group(pid_file: Path) -> list[str]:
    """A shell that starts two sleeps in the background, writing their pids, then waits."""
    one = f"sleep 300 & echo $! >> {pid_file}"
    return ["sh", "-c", f"{one}; {one}; wait"]


def _until_started(pid_file: Path, pids: list[int]) -> Callable[[int], Awaitable[None]]:
    """An ``on_start`` that returns once the shell has started both children (the run's
    timeout counts from then): whatever the machine's load, the kill finds them there."""

    async def started(pgid: int) -> None:
        deadline = time.monotonic() + 10
        while len(_children(pid_file)) < 2:
            assert time.monotonic() < deadline, "the shell never started its children"
            await asyncio.sleep(0.01)
        pids[:] = [pgid, *_children(pid_file)]

    return started


async def _all_gone(pids: list[int]) -> None:
    deadline = time.monotonic() + 10
    while alive := [pid for pid in pids if not is_gone(pid)]:
        assert time.monotonic() < deadline, f"{alive} outlived the run"
        await asyncio.sleep(0.02)


def _kill_leftovers(pids: list[int]) -> None:
    """What a failing run left behind (the test failed already)."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


async def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file, pids = tmp_path / "pids", []
    try:
        with pytest.raises(ProcessTimeout):
            # the run itself ends at once too: it does not wait for children it left behind
            async with asyncio.timeout(10):
                await run_process(
                    _group(pid_file),
                    env=ENV,
                    timeout_s=0.5,
                    on_start=_until_started(pid_file, pids),
                )
        assert len(pids) == 3
        await _all_gone(pids)
    finally:
        _kill_leftovers(pids)


async def test_cancel_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file, pids = tmp_path / "pids", []
    started = _until_started(pid_file, pids)
    running = asyncio.Event()

    async def on_start(pgid: int) -> None:
        await started(pgid)
        running.set()

    task = asyncio.create_task(run_process(_group(pid_file), env=ENV, on_start=on_start))
    try:
        await asyncio.wait_for(running.wait(), timeout=10)
        assert not any(is_gone(pid) for pid in pids)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            async with asyncio.timeout(10):
                await task
        await _all_gone(pids)
    finally:
        _kill_leftovers(pids)
