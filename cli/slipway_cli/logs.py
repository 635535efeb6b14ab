"""``slipway logs <service>`` and ``slipway deployments logs <deployment>``: read or follow a
stream of log lines through the public API.

Following reads the route's Server-Sent Events (``follow=true``) and keeps going on its own:
after a ``resume`` event (the connection's lifetime is over) or a dropped connection it
reconnects with ``Last-Event-ID``; a ``skipped`` event (the terminal read slower than lines
came) is filled in place by reading the gap back (``after=from_cursor``); a deployment's ``end``
event ends the command (exit 0 when the deployment succeeded, 1 otherwise).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from slipway_cli import sse
from slipway_cli.client import ApiError, auth_headers, call
from slipway_cli.contexts import api_url

_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_RECONNECTS = 5  # in a row, without a line in between


def since_param(since: str | None, now: datetime | None = None) -> str | None:
    """``10m``, ``2h``, ``1d``, ``30s`` ago as an ISO time; an ISO time as given."""
    if since is None:
        return None
    match = _DURATION.match(since.strip())
    if match is None:
        return since
    amount, unit = match.groups()
    moment = (now or datetime.now(UTC)) - timedelta(**{_UNITS[unit]: int(amount)})
    return moment.isoformat()


def read(path: str, params: dict[str, str]) -> list[dict[str, Any]]:
    """One page of lines (``--tail``, ``--since``, ``--grep``), oldest first."""
    page = call("GET", path, params=params)
    return list(page["items"])


Print = Callable[[dict[str, Any]], None]


def follow(
    path: str, params: dict[str, str], show: Print, note: Callable[[str], None]
) -> str | None:
    """Prints lines as they come until the stream's ``end`` (its status is returned) or the
    user's Ctrl-C (``KeyboardInterrupt`` goes up)."""
    last: str | None = None
    failures = 0
    while True:
        headers = auth_headers() | ({"last-event-id": last} if last else {})
        try:
            for event, data, event_id in _events(path, params, headers):
                failures = 0
                if event == "line":
                    show(data)
                    last = event_id
                elif event == "skipped":
                    _fill_gap(path, params, data, show)
                elif event == "end":
                    return str(data["status"])
                elif event == "resume":
                    last = event_id or last
                    break
        except httpx.TransportError as exc:
            failures += 1
            if failures > _RECONNECTS:
                raise ApiError(0, "UNREACHABLE", f"lost {api_url()}: {exc}") from None
            note(f"connection lost ({exc.__class__.__name__}); reconnecting")
            time.sleep(min(2.0, 0.2 * 2**failures))


def _events(
    path: str, params: dict[str, str], headers: dict[str, str]
) -> Iterator[tuple[str, Any, str | None]]:
    """``(event, data, id)`` of one connection (heartbeats left out)."""
    timeout = httpx.Timeout(30, read=90)  # heartbeats come every 15 s: a silence is a loss
    url = f"{api_url()}/api/v1{path}"
    query = {**params, "follow": "true"}
    with httpx.stream("GET", url, params=query, headers=headers, timeout=timeout) as response:
        sse.raise_for_error(response)
        yield from sse.events(response)


def _fill_gap(path: str, params: dict[str, str], gap: dict[str, Any], show: Print) -> None:
    """The lines a ``skipped`` event names, read back and printed in their place."""
    after = int(gap["from_cursor"])
    filters = {k: v for k, v in params.items() if k in ("stream", "q", "since")}
    while True:
        page = call(
            "GET",
            path,
            params={
                **filters,
                "after": str(after),
                "before": str(int(gap["to_cursor"]) + 1),
                "limit": "5000",
            },
        )
        for line in page["items"]:
            show(line)
        if page["next_cursor"] is None:
            return
        after = int(page["next_cursor"])
