"""The CLI's reading of a Server-Sent Events answer."""

from __future__ import annotations

import httpx
import pytest

from slipway_cli import sse
from slipway_cli.client import ApiError


def _answer(text: str, status: int = 200) -> httpx.Response:
    return httpx.Response(status, content=text.encode())


def test_events_with_their_names_ids_and_data_and_comments_aside() -> None:
    comments: list[str] = []
    answer = _answer(
        ": following\n\n"
        'id: 7\nevent: line\ndata: {"text": "a"}\n\n'
        ": heartbeat\n\n"
        'data: {"n":\ndata:  1}\n\n'
        "event: end\n\n"  # no data: not an event
    )
    seen = list(sse.events(answer, comments.append))
    assert seen == [("line", {"text": "a"}, "7"), ("message", {"n": 1}, None)]
    assert comments == ["following", "heartbeat"]


def test_an_error_answer_raises_its_code() -> None:
    answer = _answer('{"error": {"code": "NOT_FOUND", "message": "no such"}}', 404)
    with pytest.raises(ApiError) as raised:
        sse.raise_for_error(answer)
    assert (raised.value.status, raised.value.code) == (404, "NOT_FOUND")


def test_a_success_answer_raises_nothing() -> None:
    sse.raise_for_error(_answer(""))
