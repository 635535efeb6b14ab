"""Child processes of a build: lines streamed, whole group killed on timeout and on cancel."""

from __future__ import annotations

import asyncio
import subprocess

import pytest

from slipway_builder.process import ProcessTimeout, run


def _alive(marker: str) -> bool:
    out = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout
    return bool(out.strip())


async def test_lines_of_both_streams_arrive_in_order() -> None:
    lines: list[tuple[str, str]] = []

    async def sink(stream: str, text: str) -> None:
        lines.append((stream, text))

    code = await run(
        ["sh", "-c", "echo one; echo two >&2; printf 'a\\rb\\n'; exit 4"], sink=sink, timeout_s=10
    )
    assert code == 4
    assert ("stdout", "one") in lines and ("stderr", "two") in lines
    assert [t for s, t in lines if s == "stdout"] == ["one", "a", "b"]


async def test_timeout_kills_the_whole_process_group() -> None:
    async def sink(stream: str, text: str) -> None:
        pass

    marker = "sleep 47.5"
    with pytest.raises(ProcessTimeout):
        await run(["sh", "-c", f"{marker} & {marker}"], sink=sink, timeout_s=0.5)
    await asyncio.sleep(0.2)
    assert not _alive(marker)


async def test_cancel_kills_the_whole_process_group() -> None:
    async def sink(stream: str, text: str) -> None:
        pass

    marker = "sleep 48.5"
    task = asyncio.create_task(run(["sh", "-c", f"{marker} & {marker}"], sink=sink, timeout_s=60))
    await asyncio.sleep(0.5)
    assert _alive(marker)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.2)
    assert not _alive(marker)
