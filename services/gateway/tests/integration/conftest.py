from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from slipway_libs.testing.platform import Platform


@pytest.fixture(scope="module")
async def platform(platform_factory) -> Platform:
    return await platform_factory(["identity", "gateway"])


@pytest.fixture
async def api(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=f"{platform.url('gateway')}/api/v1", timeout=10
    ) as client:
        yield client
