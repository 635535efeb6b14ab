import uuid
from datetime import UTC, datetime

import pytest

from slipway_logs.domain import lines
from slipway_logs.domain.lines import PART_BYTES, Append, IncomingLine, NoStream

AT = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_short_line_is_one_part() -> None:
    assert lines.split("hello") == ["hello"]
    assert lines.split("") == [""]


def test_a_line_of_exactly_the_limit_is_one_part() -> None:
    text = "a" * PART_BYTES
    assert lines.split(text) == [text]


@pytest.mark.parametrize("char", ["a", "é", "€", "😀"])
def test_long_lines_split_on_character_boundaries_and_join_back(char: str) -> None:
    text = char * (3 * PART_BYTES // len(char.encode()) + 7)
    parts = lines.split(text)
    assert len(parts) >= 3
    assert all(len(p.encode()) <= PART_BYTES for p in parts)
    assert all(p for p in parts)
    assert "".join(parts) == text


def test_a_mebibyte_line_comes_back_whole_from_its_parts() -> None:
    text = ("0123456789abcdef" * 65536)[: 1024 * 1024 - 3] + "é!"
    parts = [
        lines.Part(
            cursor=4,
            part=n,
            parts=0,
            at=AT,
            kind="live",
            stream="stdout",
            service_id=None,
            build_id=None,
            text=t,
        )
        for n, t in enumerate(lines.split(text), start=1)
    ]
    [line] = lines.join(reversed(parts))  # order of arrival does not matter
    assert line.text == text and line.cursor == 4


def test_nul_characters_are_replaced_not_refused() -> None:
    assert lines.clean("a\x00b") == "a\ufffdb"


def test_streams_deployment_for_build_and_deploy_lines_service_for_live() -> None:
    dep, build, svc = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    kw = {"deployment_id": dep, "build_id": build, "service_id": svc}
    assert lines.stream_of("build", **kw) == ("deployment", dep)
    assert lines.stream_of("deploy", **kw) == ("deployment", dep)
    assert lines.stream_of("live", **kw) == ("service", svc)
    assert lines.stream_of("build", deployment_id=None, build_id=build, service_id=svc) == (
        "deployment",
        build,
    )
    with pytest.raises(NoStream):
        lines.stream_of("deploy", deployment_id=None, build_id=build, service_id=svc)
    with pytest.raises(NoStream):
        lines.stream_of("live", deployment_id=dep, build_id=None, service_id=None)


def _append(stream_id: uuid.UUID, *texts: str) -> Append:
    return Append(
        stream_kind="service",
        stream_id=stream_id,
        organization_id=uuid.UUID(int=1),
        environment_id=None,
        kind="live",
        service_id=stream_id,
        build_id=None,
        lines=[IncomingLine(at=AT, stream="stdout", text=t) for t in texts],
    )


def test_cursors_follow_the_events_and_their_lines_per_stream() -> None:
    a, b = uuid.UUID(int=2), uuid.UUID(int=1)
    appends = [_append(a, "a1", "a2"), _append(b, "b1"), _append(a, "a3")]
    growth = lines.growth(appends)
    assert [(g.stream_id, g.lines) for g in growth] == [(b, 1), (a, 3)]  # stream id order
    rows = lines.rows(appends, {a: 13, b: 1})  # a had 10 lines before, b none
    got = [(r.stream_id, r.part.cursor, r.part.text) for r in rows]
    assert got == [(a, 11, "a1"), (a, 12, "a2"), (b, 1, "b1"), (a, 13, "a3")]


def test_the_parts_of_a_long_line_share_its_cursor() -> None:
    a = uuid.uuid4()
    rows = lines.rows([_append(a, "x" * (PART_BYTES + 1), "y")], {a: 2})
    assert [(r.part.cursor, r.part.part, r.part.parts) for r in rows] == [
        (1, 1, 2),
        (1, 2, 2),
        (2, 1, 1),
    ]


def test_a_part_after_the_first_carries_the_end_of_the_one_before() -> None:
    a = uuid.uuid4()
    text = "".join(chr(0x41 + n % 26) for n in range(2 * PART_BYTES + 10))
    rows = lines.rows([_append(a, text, "short")], {a: 2})
    first, second, third, short = (r.part for r in rows)
    assert (first.overlap, short.overlap) == ("", "")
    assert second.overlap == first.text[-(lines.MAX_QUERY_CHARS - 1) :]
    assert third.overlap == second.text[-(lines.MAX_QUERY_CHARS - 1) :]
    assert first.text + second.text + third.text == text  # the overlap is not in the text


def test_events_without_lines_grow_nothing() -> None:
    assert lines.growth([_append(uuid.uuid4())]) == []
