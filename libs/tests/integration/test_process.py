"""The process group of a tool is stopped however its run ends, including a cancel that
arrives while asyncio is still connecting the child's pipes."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from slipway_libs.process import run_process
from slipway_libs.testing.processes import is_gone

SHELL_ENV = {"PATH": os.environ["PATH"]}


def children() -> set[str]:
    return set(Path(f"/proc/self/task/{os.getpid()}/children").read_text().split())


async def eventually_gone(pid: int) -> None:
    for _ in range(500):
        if is_gone(pid):
            return
        await asyncio.sleep(0.02)
    os.kill(pid, 9)
    raise AssertionError(f"process {pid} outlived the cancelled run")


async def test_a_cancel_while_the_pipes_connect_still_stops_the_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    script = f"sleep 30 >/dev/null 2>&1 & echo $! > {pid_file}; wait"
    before = children()  # an earlier test of this worker may have left children of its own
    task = asyncio.create_task(run_process(["sh", "-c", script], env=SHELL_ENV))
    while children() <= before:  # forked, and its pipes connect on later turns of the loop
        await asyncio.sleep(0)
    deadline = time.monotonic() + 10
    while not (pid_file.exists() and pid_file.read_text().strip()):  # the loop stays blocked
        assert time.monotonic() < deadline, "the shell never started its child"
        time.sleep(0.01)  # noqa: ASYNC251 (blocking on purpose: nothing else may run)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await eventually_gone(int(pid_file.read_text()))
