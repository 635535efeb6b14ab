"""The follow's Server-Sent Events: the lines at hand go out as one chunk, other events at once."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import UTC, datetime

from slipway_logs.api import follow as api
from slipway_logs.domain.follow import Skipped
from slipway_logs.domain.lines import Line
from slipway_logs.usecases.follow import Event, Expired, Following, Heartbeat, Pause


def _line(cursor: int, text: str = "x") -> Line:
    return Line(
        cursor=cursor,
        at=datetime(2026, 1, 1, tzinfo=UTC),
        kind="live",
        stream="stdout",
        service_id=None,
        build_id=None,
        text=text,
    )


async def _chunks(*events: Event) -> list[bytes]:
    released = []

    async def source() -> AsyncGenerator[Event, None]:
        for event in events:
            yield event

    out = [chunk async for chunk in api._sse(source(), lambda: released.append(True))]
    assert released == [True]
    return out


async def test_lines_at_hand_go_out_together_at_a_pause_other_events_at_once() -> None:
    burst = [_line(1), _line(2), _line(3)]
    skipped = Skipped(count=5, from_cursor=3, to_cursor=8)
    chunks = await _chunks(
        Following(), *burst, Pause(), Heartbeat(), Pause(), skipped, _line(9), Expired(9)
    )
    assert chunks == [
        api.sse(Following()),
        b"".join(api.sse(x) for x in burst),
        api.sse(Heartbeat()),
        api.sse(skipped),
        api.sse(_line(9)) + api.sse(Expired(9)),
    ]
    assert all(chunk for chunk in chunks)  # a pause alone sends nothing


async def test_a_long_burst_goes_out_in_chunks_of_bounded_size() -> None:
    lines = [_line(n, "y" * 10_000) for n in range(1, 21)]
    chunks = await _chunks(*lines)  # no pause: the generator ended
    assert b"".join(chunks) == b"".join(api.sse(x) for x in lines)
    assert len(chunks) > 1
    assert all(len(chunk) < api._FLUSH_BYTES + 11_000 for chunk in chunks)
