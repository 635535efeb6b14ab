"""Fixtures of the security regression tests: identity, catalog and the gateway as real processes
(one platform per test module) and a client of the public API. A module that needs other
services defines its own ``platform``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest

from slipway_libs.testing.platform import Platform


@pytest.fixture(scope="module")
async def platform(platform_factory) -> Platform:
    return await platform_factory(["identity", "catalog", "gateway"])


@pytest.fixture
async def api(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=f"{platform.url('gateway')}/api/v1", timeout=30
    ) as client:
        yield client


@dataclass
class Listener:
    """Stands for an internal service or registry: records every connection it is offered."""

    port: int = 0
    accepted: list[int] = field(default_factory=list)


@pytest.fixture(scope="module")
async def listener() -> AsyncIterator[Listener]:
    seen = Listener()

    async def count(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.accepted.append(seen.port)
        writer.close()

    server = await asyncio.start_server(count, "127.0.0.1", 0)
    seen.port = server.sockets[0].getsockname()[1]
    async with server:
        yield seen
