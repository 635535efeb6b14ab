"""Asserting on processes a test started (and the code under test killed)."""

from __future__ import annotations

import os
from pathlib import Path


def is_gone(pid: int) -> bool:
    """No such process, or only its zombie (killed, not yet reaped by its new parent)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except OSError:
        return True
