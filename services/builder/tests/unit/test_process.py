"""Child processes of a build: lines streamed, whole group killed on timeout and on cancel."""

from __future__ import annotations

import asyncio
import os
import subprocess

import pytest

from slipway_libs.process import ProcessTimeout, run_process

ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}


def _alive(marker: str) -> bool:
    out = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout
    return bool(out.strip())


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


async def test_timeout_kills_the_whole_process_group() -> None:
    marker = "sleep 47.5"
    with pytest.raises(ProcessTimeout):
        await run_process(["sh", "-c", f"{marker} & {marker}"], env=ENV, timeout_s=0.5)
    await asyncio.sleep(0.2)
    assert not _alive(marker)


async def test_cancel_kills_the_whole_process_group() -> None:
    marker = "sleep 48.5"
    task = asyncio.create_task(
        run_process(["sh", "-c", f"{marker} & {marker}"], env=ENV, timeout_s=60)
    )
    await asyncio.sleep(0.5)
    assert _alive(marker)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.2)
    assert not _alive(marker)
