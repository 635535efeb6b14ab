"""What /proc says about processes: identity (so a recorded pid is only trusted while it is still
the same process), process-group membership, and the processes chrooted into a container rootfs.

Invariants: a zombie counts as dead; a pid is "ours" only if its start time (clock ticks since
boot, field 22 of /proc/<pid>/stat) equals the recorded one and its command line contains the
recorded marker (the buildah container name), so a recycled pid is never adopted nor signalled.
Linux only.
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass
from pathlib import Path

_PROC = Path("/proc")


@dataclass(frozen=True)
class _Stat:
    state: str
    pgid: int
    start_ticks: int


def _stat(pid: int) -> _Stat | None:
    try:
        raw = (_PROC / str(pid) / "stat").read_text()
    except (OSError, ValueError):
        return None
    fields = raw[raw.rfind(")") + 2 :].split()  # the command name may hold spaces or ")"
    return _Stat(state=fields[0], pgid=int(fields[2]), start_ticks=int(fields[19]))


def start_ticks(pid: int) -> int | None:
    """The start time of a live (non-zombie) process, or None."""
    stat = _stat(pid)
    return None if stat is None or stat.state in ("Z", "X") else stat.start_ticks


def cmdline(pid: int) -> list[str]:
    try:
        raw = (_PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def is_ours(pid: int, ticks: int, marker: str) -> bool:
    """The process is alive, started at ``ticks`` and runs something mentioning ``marker``."""
    return start_ticks(pid) == ticks and any(marker in arg for arg in cmdline(pid))


def _pids() -> list[int]:
    return [int(entry.name) for entry in _PROC.iterdir() if entry.name.isdigit()]


def group_alive(pgid: int) -> bool:
    """Some non-zombie process is still in the group."""
    for pid in _pids():
        stat = _stat(pid)
        if stat is not None and stat.pgid == pgid and stat.state not in ("Z", "X"):
            return True
    return False


def rooted_at(rootfs: Path) -> list[int]:
    """Processes whose root directory is ``rootfs`` (chroot isolation bind-mounts the rootfs
    elsewhere, so the directory is compared by device and inode, not by path). Finds the
    processes of a container that left its process group (daemons that call setsid)."""
    try:
        target = rootfs.stat()
    except OSError:
        return []
    host = os.stat("/")
    if (target.st_dev, target.st_ino) == (host.st_dev, host.st_ino):
        return []  # never the host's own root
    found = []
    for pid in _pids():
        with contextlib.suppress(OSError):
            root = os.stat(_PROC / str(pid) / "root")
            if (root.st_dev, root.st_ino) == (target.st_dev, target.st_ino):
                found.append(pid)
    return found


def kill_rooted(rootfs: Path) -> int:
    """SIGKILL every process chrooted into ``rootfs``; returns how many were signalled."""
    pids = rooted_at(rootfs)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return len(pids)
