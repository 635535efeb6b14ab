"""Sends one webhook attempt over HTTP, through the egress guard.

Every connection resolves the target's name once, checks each address it got (loopback,
private, link-local, metadata... refused unless the platform allow-lists that exact
``host:port``) and connects to a checked address: a name that resolved to a public address
when the webhook was created and to a private one now (DNS rebinding) is refused here, at the
connection the request then uses (``slipway_libs.egress.guarded_transport``). Redirects are
not followed: their target was never checked. A failure is reported, never raised: it is the
attempt's record.
"""

from __future__ import annotations

import time

import httpx

from slipway_libs.egress import (
    EgressError,
    EgressPolicy,
    Resolver,
    guarded_transport,
    system_resolver,
)
from slipway_scheduler.domain.deliveries import AttemptResult

# what of a receiver's answer the delivery log keeps
RESPONSE_BODY_LIMIT = 1024


class HttpSender:
    def __init__(
        self,
        policy: EgressPolicy,
        *,
        timeout_s: float,
        resolver: Resolver = system_resolver,
    ) -> None:
        self._timeout_s = timeout_s
        self._client = httpx.AsyncClient(
            transport=guarded_transport(policy, resolver=resolver),
            timeout=timeout_s,
            follow_redirects=False,
        )

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> AttemptResult:
        started = time.monotonic()
        try:
            code, text = await self._exchange(url, body, headers)
        except EgressError as refused:
            return _failed(started, f"{refused.reason}: {refused.message}")
        except httpx.TimeoutException:
            return _failed(started, f"TIMEOUT: no answer within {self._timeout_s:g} s")
        except (httpx.HTTPError, httpx.InvalidURL, OSError) as exc:
            return _failed(started, f"CONNECTION_FAILED: {type(exc).__name__}")
        return AttemptResult(response_code=code, duration_ms=_ms(started), response_body=text)

    async def _exchange(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
        """The answer's code and the start of its body (a receiver's long page is cut)."""
        async with self._client.stream("POST", url, content=body, headers=headers) as response:
            kept = b""
            async for chunk in response.aiter_bytes():
                kept += chunk
                if len(kept) >= RESPONSE_BODY_LIMIT:
                    break
            return response.status_code, kept[:RESPONSE_BODY_LIMIT].decode(errors="replace")

    async def close(self) -> None:
        await self._client.aclose()


def _failed(started: float, error: str) -> AttemptResult:
    return AttemptResult(response_code=None, duration_ms=_ms(started), error=error)


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
