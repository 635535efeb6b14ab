"""Fixtures of the deployment tests: the platform that builds and deploys (identity, catalog,
builder, deployer, gateway as processes), one per test module, and a client of its public API.
A module that needs other services defines its own ``platform``."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from slipway_libs.testing.platform import Platform


@pytest.fixture(scope="module")
def repos(tmp_path_factory) -> Path:
    """Where the tests' git repositories live (the builder may build from there only)."""
    return tmp_path_factory.mktemp("repos")


@pytest.fixture(scope="module")
async def platform(platform_factory, repos, devstack) -> Platform:
    if "SLIPWAY_BASE_IMAGE" not in devstack.env:
        pytest.fail("the devstack has no registry/base image: run `make infra-up`")
    return await platform_factory(
        ["identity", "catalog", "builder", "deployer", "gateway"],
        extra_env={"SLIPWAY_GIT_LOCAL_ROOTS": str(repos)},
    )


@pytest.fixture
async def api(platform: Platform):
    async with httpx.AsyncClient(
        base_url=f"{platform.url('gateway')}/api/v1", timeout=30
    ) as client:
        yield client
