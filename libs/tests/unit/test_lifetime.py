"""A process started with ``SLIPWAY_DIE_WITH_PARENT`` stops when its parent dies, and only then."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from slipway_libs.lifetime import PARENT_ENV

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"),
    reason="the parent-death signal (prctl PR_SET_PDEATHSIG) exists on Linux only",
)

# The parent starts the child the way the test platform does (its own session), prints the
# child's pid and then waits to be killed; the child arranges its death and sleeps.
PARENT = textwrap.dedent(
    """
    import os, subprocess, sys, time
    from slipway_libs.lifetime import asking_to_die_with
    env = asking_to_die_with(dict(os.environ)) if sys.argv[1] == "ask" else dict(os.environ)
    child = subprocess.Popen(
        [sys.executable, "-c", "from slipway_libs.lifetime import die_with_parent;"
         "import time; die_with_parent(); print('armed', flush=True); time.sleep(120)"],
        env=env, start_new_session=True, stdout=subprocess.PIPE, text=True,
    )
    assert child.stdout.readline().strip() == "armed"
    print(child.pid, flush=True)
    time.sleep(120)
    """
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by init) counts as gone
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _child_after_parent_killed(mode: str) -> int:
    env = {k: v for k, v in os.environ.items() if k != PARENT_ENV}
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, mode], stdout=subprocess.PIPE, text=True, env=env
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    return child


def _wait_gone(pid: int, deadline_s: float = 30.0) -> bool:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_a_child_that_asked_stops_when_its_parent_is_killed() -> None:
    child = _child_after_parent_killed("ask")
    assert _wait_gone(child), f"child {child} outlived its SIGKILLed parent"


def test_a_child_that_did_not_ask_keeps_running() -> None:
    child = _child_after_parent_killed("plain")
    try:
        time.sleep(0.5)  # the kernel's signal would have arrived at once; give it time to show
        assert _alive(child), "a child without the variable must not be stopped"
    finally:
        os.kill(child, signal.SIGKILL)


ARMING = "from slipway_libs.lifetime import die_with_parent; die_with_parent()"


def test_a_child_whose_parent_is_already_gone_exits(tmp_path: Path) -> None:
    # the variable names a pid that is not this process's parent: the parent "died" before
    # die_with_parent ran, so the child must not start
    result = subprocess.run(
        [sys.executable, "-c", ARMING],
        env={**os.environ, PARENT_ENV: "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "parent 1 is gone" in result.stderr
