"""Processes that fault tests start, SIGKILL and restart, and the devstack they stop."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

DEVSTACK = [
    sys.executable,
    str(Path(__file__).resolve().parents[2] / "deploy" / "devstack" / "devstack.py"),
]


def devstack_command(*args: str) -> None:
    subprocess.run([*DEVSTACK, *args], check=True, capture_output=True, timeout=180)


async def outage(component: str, for_s: float) -> datetime:
    """The devstack's ``component`` stopped for ``for_s`` seconds, then started again. Returns
    when it was down (its stop had returned): what the platform did after that, it did after
    the outage."""
    try:
        devstack_command("stop", component)
        down_at = datetime.now(UTC)
        await asyncio.sleep(for_s)
    finally:
        devstack_command("up")
    return down_at


class ProcessUnderTest:
    def __init__(self, argv: Sequence[str]) -> None:
        self.argv = list(argv)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(self.argv, start_new_session=True)

    def kill(self) -> None:
        """SIGKILL the whole group; it must have been running (a death of its own fails)."""
        self._signal(signal.SIGKILL)
        assert self.process is not None
        self.process.wait()

    def pause(self) -> None:
        """SIGSTOP: the process holds whatever it was doing until ``resume``."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def _signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"{self.argv[2]} died by itself with {self.process.returncode}")
        os.killpg(self.process.pid, sig)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            os.killpg(self.process.pid, signal.SIGCONT)  # a paused one would never see it
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
