"""The gateway's readiness: every service it routes to answers its own ``/readyz``."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import Any

import httpx

from slipway_libs.http import ReadinessCheck


def upstream_checks(
    client: httpx.AsyncClient, upstreams: Mapping[str, str]
) -> dict[str, ReadinessCheck]:
    def check(base_url: str) -> Callable[[], Coroutine[Any, Any, dict[str, Any]]]:
        async def ready() -> dict[str, Any]:
            response = await client.get(f"{base_url}/readyz")
            body = response.json()
            if response.status_code != 200:
                raise RuntimeError(f"{base_url} not ready: {body.get('checks')}")
            return {"url": base_url}

        return ready

    return {name: check(url) for name, url in upstreams.items()}
