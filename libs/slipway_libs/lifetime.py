"""A child process that must not outlive the process that started it.

A test platform starts each service as a process of its own session (so that a stop reaches the
whole group); when the test run is killed (CI's timeout, a helper's Ctrl-C, an OOM kill) nobody is
left to stop them and they kept running for hours, holding ports, Kafka groups and CPU. The
starter sets ``SLIPWAY_DIE_WITH_PARENT`` to its pid; the child asks the kernel for a SIGTERM when
its parent dies (``PR_SET_PDEATHSIG``, Linux only) — the same stop as a normal shutdown. A
process started by ``make up`` or a supervisor has no such variable and is not affected.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PARENT_ENV = "SLIPWAY_DIE_WITH_PARENT"
_PR_SET_PDEATHSIG = 1


def die_with_parent(environ: dict[str, str] | None = None) -> None:
    """Arrange a SIGTERM on the parent's death, if the starter asked for it; exit at once if the
    parent is already gone (it died before the request reached the kernel)."""
    parent = (os.environ if environ is None else environ).get(PARENT_ENV)
    if not parent or not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        return  # not fatal: the process only loses this protection
    if os.getppid() != int(parent):
        sys.exit(f"parent {parent} is gone; not starting")


def asking_to_die_with(environ: dict[str, str]) -> dict[str, str]:
    """``environ`` for a child that should die with this process."""
    return {**environ, PARENT_ENV: str(os.getpid())}
