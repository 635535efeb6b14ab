"""Login throttling: slow password guessing down without letting a stranger lock an owner out.

Rules (failures counted in a sliding window, the email in its normalized form):
- **Per client address**: at most ``per_address`` failures from one address, whatever the
  accounts tried (password spraying). IPv6 addresses count per /64, the block one subscriber
  usually holds, so rotating through it does not reset the count.
- **Per account**: at most ``per_account`` failures against one account from the addresses that
  never signed in to it. An address the account signed in from before (the owner's) counts only
  its own failures: strangers' failures never lock the owner out there, and the owner mistyping
  is still limited.

A refused login answers 429 with ``Retry-After``: the seconds until the oldest counted failure
leaves the window. Pure: the counts come from the caller.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta

UNKNOWN_ADDRESS = "unknown"
_IPV6_BLOCK = 64


@dataclass(frozen=True)
class Failures:
    """Failed logins counted in the window and when the oldest of them happened."""

    count: int
    first: datetime | None


@dataclass(frozen=True)
class Limits:
    window: timedelta
    per_account: int
    per_address: int


def address_key(raw: str | None) -> str:
    """What failures are counted by for a client address (the gateway's TCP peer)."""
    try:
        address = ipaddress.ip_address((raw or "").strip())
    except ValueError:
        return UNKNOWN_ADDRESS
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, _IPV6_BLOCK), strict=False))
    return str(address)


def retry_after_s(
    limits: Limits, *, by_address: Failures, by_account: Failures, now: datetime
) -> int | None:
    """Seconds to wait when a limit is reached, else None."""
    waits = [
        _wait(failures, limit, limits.window, now)
        for failures, limit in (
            (by_address, limits.per_address),
            (by_account, limits.per_account),
        )
    ]
    reached = [w for w in waits if w is not None]
    return max(reached) if reached else None


def _wait(failures: Failures, limit: int, window: timedelta, now: datetime) -> int | None:
    if failures.count < limit or failures.first is None:
        return None
    return max(int((failures.first + window - now).total_seconds()) + 1, 1)
