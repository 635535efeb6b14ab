"""Processes that fault tests start, SIGKILL and restart."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import Sequence


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
