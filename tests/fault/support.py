"""Processes that fault tests start, SIGKILL and restart, and the devstack they stop."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

DEVSTACK = [
    sys.executable,
    str(Path(__file__).resolve().parents[2] / "deploy" / "devstack" / "devstack.py"),
]


def devstack_command(*args: str) -> None:
    subprocess.run([*DEVSTACK, *args], check=True, capture_output=True, timeout=180)


async def outage(component: str, for_s: float) -> None:
    """The devstack's ``component`` stopped for ``for_s`` seconds, then started again."""
    try:
        devstack_command("stop", component)
        await asyncio.sleep(for_s)
    finally:
        devstack_command("up")


class ProcessUnderTest:
    def __init__(self, argv: Sequence[str]) -> None:
        self.argv = list(argv)
        self.process: subprocess.Popen[bytes] | None = None
        self.kills = 0

    def start(self) -> None:
        self.process = subprocess.Popen(self.argv, start_new_session=True)

    async def kill_and_restart(self, down_for_s: float) -> None:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"{self.argv[2]} died by itself with {self.process.returncode}")
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.kills += 1
        await asyncio.sleep(down_for_s)
        self.start()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
