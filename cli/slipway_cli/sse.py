"""Reading a Server-Sent Events answer of the gateway (the logs follow, the organization's event
stream): one parser and one error reading for both."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from slipway_cli.client import ApiError


def raise_for_error(response: httpx.Response) -> None:
    """An error answer (read in full) as ``ApiError`` with the platform's code; nothing else."""
    if response.status_code < 400:
        return
    response.read()
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        raise ApiError(response.status_code, "HTTP_ERROR", response.text[:200]) from None
    raise ApiError(response.status_code, error["code"], error["message"])


def events(
    response: httpx.Response, on_comment: Callable[[str], None] | None = None
) -> Iterator[tuple[str, Any, str | None]]:
    """``(event, data, id)`` per event of the stream (``data`` decoded from JSON); comments
    (heartbeats, ``: following``) go to ``on_comment`` without their colon."""
    name, event_id, data = "message", None, ""
    for line in response.iter_lines():
        if line == "":
            if data:
                yield name, json.loads(data), event_id
            name, event_id, data = "message", None, ""
        elif line.startswith(":"):
            if on_comment is not None:
                on_comment(line[1:].strip())
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                name = value
            elif field == "id":
                event_id = value
            elif field == "data":
                data += value
