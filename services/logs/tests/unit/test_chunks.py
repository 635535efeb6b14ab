"""Search chunks: the words of a batch's lines per stream, which bound where a ``q`` can match."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime

from slipway_logs.domain import lines
from slipway_logs.domain.lines import Append, Chunk, IncomingLine, Row, chunks, search_words

ORG = uuid.uuid4()
NOW = datetime.now(UTC)


def _append(stream: uuid.UUID, *texts: str) -> Append:
    return Append(
        stream_kind="service",
        stream_id=stream,
        organization_id=ORG,
        environment_id=None,
        kind="live",
        service_id=stream,
        build_id=None,
        lines=[IncomingLine(at=NOW, stream="stdout", text=t) for t in texts],
    )


def _rows(*appends: Append) -> list[Row]:
    heads: dict[uuid.UUID, int] = {}
    for append in appends:
        heads[append.stream_id] = heads.get(append.stream_id, 0) + len(append.lines)
    return lines.rows(appends, heads)


def test_a_batch_has_a_chunk_per_stream_with_its_cursor_range_and_distinct_words() -> None:
    one, two = sorted([uuid.uuid4(), uuid.uuid4()], key=str)
    rows = _rows(
        _append(one, "GET /health 200", "GET /items 404"),
        _append(two, "worker started"),
        _append(one, "health ok"),
    )
    assert chunks(rows) == [
        Chunk(
            stream_id=one,
            organization_id=ORG,
            first_cursor=1,
            last_cursor=3,
            words="GET health 200 items 404 ok",
        ),
        Chunk(
            stream_id=two,
            organization_id=ORG,
            first_cursor=1,
            last_cursor=1,
            words="worker started",
        ),
    ]


def test_a_chunk_closes_at_the_first_line_boundary_past_its_limit() -> None:
    stream = uuid.uuid4()
    long = "w" * 40_000  # three parts: never split between chunks
    rows = _rows(_append(stream, "a1", "b2", long, "c3", "d4"))
    found = chunks(rows, limit=5)
    assert [(c.first_cursor, c.last_cursor) for c in found] == [(1, 2), (3, 3), (4, 5)]
    # each part's words with the end of the part before: any q (256 characters at most) of it
    assert set(found[1].words) == {"w", " "} and "w" * lines.MAX_QUERY_CHARS in found[1].words


def test_a_word_cut_by_the_split_of_a_long_line_is_whole_in_its_chunk() -> None:
    stream = uuid.uuid4()
    text = "x " * (lines.PART_BYTES // 2 - 2) + "rollback"  # the split falls inside the word
    rows = _rows(_append(stream, text))
    assert len(rows) == 2 and not rows[0].part.text.endswith("rollback")
    assert "rollback" in chunks(rows)[0].words.split()


def test_the_words_of_a_q_are_its_letter_and_digit_runs_long_enough_for_a_trigram() -> None:
    assert search_words("rollback timeout") == ["rollback", "timeout"]
    assert search_words("a_bc-def 50%") == ["def"]
    assert search_words("ok") == []
    assert search_words("Größe über") == ["Größe", "über"]


def test_every_word_of_a_q_found_in_a_line_is_in_that_lines_chunk() -> None:
    # the property the search relies on: a chunk that lacks a word of q holds no line with q
    rng = random.Random(12)
    alphabet = "abcdefgh0123 _-./:%ÄÖ"
    stream = uuid.uuid4()
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60))) for _ in range(300)]
    found = chunks(_rows(_append(stream, *texts)), limit=500)
    for _ in range(2_000):
        text = rng.choice(texts)
        start = rng.randint(0, len(text))
        q = text[start : start + rng.randint(1, 12)]
        cursor = texts.index(text) + 1
        [chunk] = [c for c in found if c.first_cursor <= cursor <= c.last_cursor]
        for word in search_words(q):
            assert word.lower() in chunk.words.lower(), (q, word)
