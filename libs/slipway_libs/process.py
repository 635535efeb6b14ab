"""Running tools (git, buildah, the local runtime's containers) as child processes: no shell,
output streamed line by line with secrets redacted, and the whole process group stopped on
timeout, cancellation or error (SIGTERM first when a grace period is given, then SIGKILL)."""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import re
import signal
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

LineSink = Callable[[str, str], Awaitable[None]]
_T = TypeVar("_T")


class ProcessTimeout(Exception):
    """The process ran longer than allowed (its group was killed)."""


@dataclass(frozen=True)
class ProcessResult:
    returncode: int
    stdout: str
    stderr_tail: tuple[str, ...]


def redact(text: str, *, secrets: Sequence[str]) -> str:
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def signal_group(pgid: int, sig: int) -> None:
    """Send ``sig`` to the process group; a group that is already gone is not an error."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def lower_session_priority(pid: int, nice: int) -> None:
    """Make the session ``pid`` leads (started with ``start_new_session``) ``nice`` to the CPU
    scheduler. With autogroup (Debian's default) Linux weighs each session against the others
    and a process's own nice only ranks it inside its session, so ``nice`` alone does not yield
    the CPU to other sessions. Best effort: no autogroup, no change."""
    if nice > 0:
        with contextlib.suppress(OSError):
            Path(f"/proc/{pid}/autogroup").write_text(str(nice))


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> None:
    signal_group(pgid, sig)


async def terminate_group(pgid: int, grace_s: float) -> None:
    """Like ``stop_group`` for a group this process did not start (left by a dead worker)."""
    kill_group(pgid, signal.SIGTERM)
    deadline = asyncio.get_running_loop().time() + grace_s
    while asyncio.get_running_loop().time() < deadline:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return
        await asyncio.sleep(0.2)
    kill_group(pgid)


async def stop_group(proc: asyncio.subprocess.Process, grace_s: float) -> None:
    """SIGTERM the group, so that tools clean up after themselves (buildah removes its working
    container), then SIGKILL whatever is left after ``grace_s``."""
    kill_group(proc.pid, signal.SIGTERM)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(proc.wait()), grace_s)
    kill_group(proc.pid)
    await proc.wait()


async def run_process(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path | None = None,
    timeout_s: float | None = None,
    on_line: LineSink | None = None,
    capture_stdout: bool = False,
    watch: Callable[[], None] | None = None,
    secrets: Sequence[str] = (),
    on_start: Callable[[int], Awaitable[None]] | None = None,
    grace_s: float = 0.0,
) -> ProcessResult:
    """Run argv (no shell) in its own process group, streaming redacted lines to `on_line`.

    Lines end at \\n or \\r (progress). With `capture_stdout`, stdout is returned instead of
    streamed. `watch` is called every 0.2 s and may raise to abort. On timeout (TIMEOUT),
    cancellation or any error the whole process group is killed. `on_start` gets the process
    group id (so that a successor can kill it after a crash).
    """
    proc = await _spawn(argv, env=env, cwd=cwd, grace_s=grace_s)
    finished = False
    try:
        if on_start is not None:
            await on_start(proc.pid)  # a new session: the group id is the child's pid
        work = _collect(proc, on_line=on_line, capture=capture_stdout, secrets=secrets)
        result = await _within(timeout_s, _watching(work, watch), f"`{' '.join(argv[:1])}`")
        finished = True
        return result
    finally:
        if not finished:
            await stop_group(proc, grace_s)


async def _spawn(
    argv: Sequence[str], *, env: Mapping[str, str], cwd: Path | None, grace_s: float
) -> asyncio.subprocess.Process:
    """Start argv in a new session. The child runs before its pipes are connected: a cancel
    arriving in between would make asyncio kill only the child, leaving anything it had already
    started alive. So the start is shielded and, when cancelled, the whole group is stopped."""
    spawning = asyncio.ensure_future(
        asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
        )
    )
    try:
        return await asyncio.shield(spawning)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await stop_group(await spawning, grace_s)
        raise


async def _within(timeout_s: float | None, work: Awaitable[_T], what: str) -> _T:
    try:
        async with asyncio.timeout(timeout_s):
            return await work
    except TimeoutError:
        raise ProcessTimeout(f"{what} did not finish within {timeout_s:g} s") from None


async def _watching(work: Awaitable[_T], watch: Callable[[], None] | None) -> _T:
    task = asyncio.ensure_future(work)
    try:
        while watch is not None and not task.done():
            await asyncio.wait({task}, timeout=0.2)
            if not task.done():
                watch()
        return await task
    finally:
        task.cancel()


async def _collect(
    proc: asyncio.subprocess.Process,
    *,
    on_line: LineSink | None,
    capture: bool,
    secrets: Sequence[str],
) -> ProcessResult:
    if proc.stdout is None or proc.stderr is None:
        raise RuntimeError("the process has no pipes")
    stdout_stream, stderr_stream = proc.stdout, proc.stderr
    tail: deque[str] = deque(maxlen=20)

    async def emit(stream: str, line: str) -> None:
        line = redact(line, secrets=secrets)
        if stream == "stderr":
            tail.append(line)
        if on_line is not None:
            await on_line(stream, line)

    async def read_stdout() -> str:
        if capture:
            return (await stdout_stream.read()).decode(errors="replace")
        await _pump_lines(stdout_stream, "stdout", emit)
        return ""

    stdout, _, returncode = await asyncio.gather(
        read_stdout(), _pump_lines(stderr_stream, "stderr", emit), proc.wait()
    )
    return ProcessResult(returncode, stdout, tuple(tail))


_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_MAX_LINE = 16_384


async def _pump_lines(
    stream: asyncio.StreamReader, name: str, emit: Callable[[str, str], Awaitable[None]]
) -> None:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    while chunk := await stream.read(65_536):
        *lines, pending = _LINE_BREAK.split(pending + decoder.decode(chunk))
        if len(pending) > _MAX_LINE:
            lines, pending = [*lines, pending], ""
        for line in lines:
            if line:
                await emit(name, line)
    if rest := pending + decoder.decode(b"", final=True):
        await emit(name, rest)
