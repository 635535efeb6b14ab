"""The nesting bound on JSON bodies, decided without parsing (so without recursion)."""

from __future__ import annotations

import json

import pytest

from slipway_libs.errors import BusinessError
from slipway_libs.json_nesting import MAX_DEPTH, check_nesting


def _code(body: bytes, limit: int = MAX_DEPTH) -> str | None:
    try:
        check_nesting(body, limit=limit)
    except BusinessError as exc:
        assert exc.status_code == 400
        return exc.code
    return None


def _nested(depth: int, *, open_: str = "[", close: str = "]", inner: str = "1") -> bytes:
    return (open_ * depth + inner + close * depth).encode()


@pytest.mark.parametrize("depth", [0, 1, 2, 31, 32])
def test_up_to_the_limit_passes(depth: int) -> None:
    assert _code(_nested(depth)) is None


@pytest.mark.parametrize("depth", [33, 100, 1000, 100_000])
def test_deeper_is_refused(depth: int) -> None:
    assert _code(_nested(depth)) == "JSON_TOO_DEEP"


def test_objects_and_arrays_count_alike() -> None:
    body = ('{"a":[' * 17 + "1" + "]}" * 17).encode()  # 34 levels
    assert _code(body) == "JSON_TOO_DEEP"
    assert _code(body, limit=34) is None


def test_wide_is_not_deep() -> None:
    body = json.dumps({"items": [[{"a": [1, 2]}] for _ in range(10_000)]}).encode()
    assert _code(body) is None


def test_brackets_in_strings_are_text() -> None:
    body = json.dumps({"a": "[" * 1000, "b": '\\"[{' * 500, "c": ['"]]]']}).encode()
    assert _code(body) is None


def test_an_escaped_quote_does_not_end_a_string() -> None:
    body = b'{"a": "\\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}'
    assert _code(body) is None


def test_a_closer_before_its_opener_or_an_unclosed_opener_is_malformed() -> None:
    assert _code(b"]" * 40 + b"[" * 40) == "MALFORMED_JSON"
    assert _code(b"[" * 40) == "MALFORMED_JSON"


def test_a_mismatch_counts_as_deep_as_the_parser_would_go() -> None:
    assert _code(b"[" * 40 + b"}" * 40) == "JSON_TOO_DEEP"
    assert _code(b"[" * 40 + b"]" * 39) == "JSON_TOO_DEEP"


def test_the_check_agrees_with_the_parser() -> None:
    for depth in (1, 5, 32, 33, 40):
        body = _nested(depth, open_='{"k":', close="}")
        assert json.loads(body)  # valid JSON
        assert (_code(body) is None) == (depth <= MAX_DEPTH)


def test_hostile_quotes_stay_linear() -> None:
    body = b'"' + b'\\"' * 300_000  # every quote escaped, the string never ends
    assert _code(body) is None
    body = b'"a' * 300_000  # half a million strings, the last one open
    assert _code(body) is None
