"""The pure parts of safe retries: which keys are valid, what makes two requests the same."""

from __future__ import annotations

import pytest

from slipway_libs.errors import InvalidInput
from slipway_libs.idempotency import fingerprint, parse_key


def test_no_header_is_no_key() -> None:
    assert parse_key(None) is None


@pytest.mark.parametrize("key", ["a", "x" * 255, "0f8c-2b~ !{}", "deploy 2026-12-05T04:00Z"])
def test_printable_ascii_keys_of_1_to_255_characters_are_accepted(key: str) -> None:
    assert parse_key(key) == key


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there", "caf\u00e9", "nul\x00", "del\x7f"])
def test_other_keys_are_refused_with_a_stable_code(key: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_key(key)
    assert refused.value.code == "INVALID_IDEMPOTENCY_KEY"
    assert refused.value.status_code == 422


def test_a_json_body_is_the_same_request_whatever_its_key_order_and_spacing() -> None:
    one = fingerprint("POST", "/x", "", b'{"a": 1, "b": [1, 2]}')
    other = fingerprint("post", "/x", "", b'{"b":[1,2],"a":1}')
    assert one == other


@pytest.mark.parametrize(
    ("method", "path", "query", "body"),
    [
        ("PUT", "/x", "", b'{"a":1}'),
        ("POST", "/y", "", b'{"a":1}'),
        ("POST", "/x", "force=1", b'{"a":1}'),
        ("POST", "/x", "", b'{"a":2}'),
        ("POST", "/x", "", b""),
    ],
)
def test_method_path_query_and_body_each_make_another_request(
    method: str, path: str, query: str, body: bytes
) -> None:
    assert fingerprint(method, path, query, body) != fingerprint("POST", "/x", "", b'{"a":1}')


def test_parts_cannot_run_into_each_other() -> None:
    assert fingerprint("POST", "/ab", "", b"c") != fingerprint("POST", "/a", "", b"bc")


def test_a_body_that_is_not_json_is_compared_byte_for_byte() -> None:
    one, other = (fingerprint("POST", "/x", "", b) for b in (b"{not json", b"{not  json"))
    assert one != other
