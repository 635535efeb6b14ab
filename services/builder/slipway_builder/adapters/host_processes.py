"""This host's processes, as the builder sees them: is a worker still alive, and kill what
builds' ``RUN`` steps left running (they run as the build range's ids)."""

from __future__ import annotations

import os
import signal


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kill_processes_of(uids: range, rounds: int = 5) -> list[int]:
    """SIGKILL every process whose real uid is in ``uids``; again while some remain (one may
    fork between the scan and its kill), a few rounds at most. The pid is held by a pidfd
    while its uid is read, so a pid reused meanwhile is never signaled."""
    killed: list[int] = []
    for _ in range(rounds):
        found = [pid for pid in _pids() if _kill_if_of(pid, uids)]
        if not found:
            break
        killed += found
    return killed


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _kill_if_of(pid: int, uids: range) -> bool:
    try:
        fd = os.pidfd_open(pid)
    except OSError:  # gone
        return False
    try:
        uid = _live_uid(pid)
        if uid is None or uid not in uids:
            return False
        signal.pidfd_send_signal(fd, signal.SIGKILL)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _live_uid(pid: int) -> int | None:
    """The process's real uid; None once it is gone or a zombie (dead, its parent has yet to
    reap it: nothing to kill)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            fields = dict(line.split(":", 1) for line in status if ":" in line)
        if fields["State"].split()[0] in ("Z", "X"):
            return None
        return int(fields["Uid"].split()[0])
    except (OSError, ValueError, IndexError, KeyError):
        return None
