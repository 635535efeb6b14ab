"""Reading a ``text/event-stream`` answer in tests: events as they come, the logs service's
comments as ``following`` (the opening one: subscribed, every later line will come) and
``heartbeat`` events."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class Event:
    event: str
    id: str | None = None
    data: Any = None


async def events(response: httpx.Response) -> AsyncIterator[Event]:
    name, event_id, data = "message", None, []
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield Event(name, event_id, json.loads("\n".join(data)))
            name, event_id, data = "message", None, []
        elif line.startswith(":"):
            if line.strip() in (": heartbeat", ": following"):
                yield Event(line.strip().removeprefix(": "))
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                name = value
            elif field == "id":
                event_id = value
            elif field == "data":
                data.append(value)
