"""The pure parts of ``slipway logs``: what ``--since`` sends."""

from datetime import UTC, datetime

from slipway_cli.logs import since_param

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def test_a_duration_is_a_time_that_long_ago() -> None:
    assert since_param("10m", NOW) == "2026-12-05T11:50:00+00:00"
    assert since_param("2h", NOW) == "2026-12-05T10:00:00+00:00"
    assert since_param("1d", NOW) == "2026-12-04T12:00:00+00:00"
    assert since_param("30s", NOW) == "2026-12-05T11:59:30+00:00"


def test_anything_else_is_passed_as_given_and_none_stays_none() -> None:
    assert since_param("2026-12-01T00:00:00Z", NOW) == "2026-12-01T00:00:00Z"
    assert since_param(None, NOW) is None


def test_a_follow_fills_a_skipped_gap_in_place_resumes_and_stops_at_the_end(
    tmp_path, monkeypatch
) -> None:
    """Fakes of the gateway's two answers: a stream that skips two lines then ends its
    lifetime, and the next one (asked with Last-Event-ID) that ends the deployment."""
    import contextlib

    import httpx

    from slipway_cli import logs

    monkeypatch.setenv("SLIPWAY_CONFIG_DIR", str(tmp_path))
    monkeypatch.setenv("SLIPWAY_TOKEN", "t0ken")
    streams = iter(
        [
            b'id: 1\nevent: line\ndata: {"cursor": 1, "text": "one"}\n\n'
            b'event: skipped\ndata: {"count": 2, "from_cursor": 1, "to_cursor": 3}\n\n'
            b'id: 4\nevent: line\ndata: {"cursor": 4, "text": "four"}\n\n'
            b": heartbeat\n\n"
            b'id: 4\nevent: resume\ndata: {"last_event_id": "4", "after": 4}\n\n',
            b'id: 5\nevent: line\ndata: {"cursor": 5, "text": "five"}\n\n'
            b'event: end\ndata: {"status": "ERROR", "last_cursor": 5}\n\n',
        ]
    )
    asked: list[dict[str, object]] = []

    @contextlib.contextmanager
    def stream(method: str, url: str, **kwargs: object):  # type: ignore[no-untyped-def]
        asked.append(dict(kwargs["headers"]))  # type: ignore[call-overload]
        yield httpx.Response(200, content=next(streams))

    def request(method: str, url: str, **kwargs: object) -> httpx.Response:
        assert kwargs["params"] == {"q": "o", "after": "1", "before": "4", "limit": "5000"}
        gap = [{"cursor": 2, "text": "two"}, {"cursor": 3, "text": "three"}]
        return httpx.Response(200, json={"items": gap, "next_cursor": None})

    monkeypatch.setattr(httpx, "stream", stream)
    monkeypatch.setattr(httpx, "request", request)
    shown: list[str] = []
    notes: list[str] = []
    status = logs.follow(
        "/deployments/d/logs",
        {"tail": "10", "q": "o"},
        lambda line: shown.append(line["text"]),
        notes.append,
    )
    assert shown == ["one", "two", "three", "four", "five"]
    assert status == "ERROR"
    assert "last-event-id" not in asked[0] and asked[1]["last-event-id"] == "4"
    assert asked[0]["authorization"] == "Token t0ken"
    assert notes == []  # nothing was lost on the way
