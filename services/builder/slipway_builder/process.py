"""Running build tools as child processes: output streamed line by line, the whole process
group killed on cancel or timeout, never a shell."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence

LineSink = Callable[[str, str], Awaitable[None]]


class ProcessTimeout(Exception):
    pass


async def _pump(stream: asyncio.StreamReader | None, name: str, sink: LineSink) -> None:
    if stream is None:
        return
    buffer = b""
    while chunk := await stream.read(4096):
        buffer += chunk
        *lines, buffer = buffer.replace(b"\r", b"\n").split(b"\n")
        for line in lines:
            if line.strip():
                await sink(name, line.decode(errors="replace"))
    if buffer.strip():
        await sink(name, buffer.decode(errors="replace"))


def kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


async def run(
    argv: Sequence[str],
    *,
    sink: LineSink,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    timeout_s: float,
    on_start: Callable[[int], Awaitable[None]] | None = None,
) -> int:
    """The exit code; raises ``ProcessTimeout`` (group killed); on cancellation kills the group."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(env) if env is not None else None,
        cwd=cwd,
        start_new_session=True,
    )
    pgid = process.pid  # a new session: the group id is the child's pid
    if on_start is not None:
        await on_start(pgid)
    pumps = asyncio.gather(
        _pump(process.stdout, "stdout", sink), _pump(process.stderr, "stderr", sink)
    )
    try:
        await asyncio.wait_for(asyncio.shield(pumps), timeout_s)
        return await process.wait()
    except TimeoutError:
        kill_group(pgid)
        await process.wait()
        raise ProcessTimeout(f"{argv[0]} exceeded {timeout_s}s") from None
    except asyncio.CancelledError:
        kill_group(pgid)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(process.wait(), 10)
        raise
    finally:
        pumps.cancel()
        with contextlib.suppress(BaseException):
            await pumps
