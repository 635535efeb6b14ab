"""Health probes against a port on the host: TCP connect, or an HTTP/1.0 GET answering 2xx.

Invariants: a probe never raises (any error is "unhealthy") and never outlives ``timeout_s``.
"""

from __future__ import annotations

import asyncio
import contextlib


async def tcp_ok(host: str, port: int, timeout_s: float) -> bool:
    try:
        async with asyncio.timeout(timeout_s):
            _, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError):
        return False
    await _close(writer)
    return True


async def http_ok(host: str, port: int, path: str, timeout_s: float) -> bool:
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                request = f"GET {path or '/'} HTTP/1.0\r\nHost: {host}:{port}\r\n\r\n"
                writer.write(request.encode())
                await writer.drain()
                status_line = await reader.readline()
            finally:
                await _close(writer)
    except (OSError, TimeoutError):
        return False
    parts = status_line.split()
    return len(parts) >= 2 and parts[1].startswith(b"2") and len(parts[1]) == 3


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
