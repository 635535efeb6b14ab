"""Field types of public request bodies: hostile text and loose types are refused."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from pydantic import Field, ValidationError

from slipway_libs.fields import Id, Instant, Line, Model, Name, Text, Value


class Thing(Model):
    name: Name = Field(default="n", max_length=100)
    line: Line = "l"
    text: Text = ""
    value: Value = ""
    size: int = 0
    ratio: float = 0.0
    on: bool = False
    ref: Id | None = None
    at: Instant | None = None


def _refused(**fields: object) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        Thing.model_validate(fields)
    return [error["type"] for error in caught.value.errors()]


HIDDEN = [
    "\x00",  # NUL: PostgreSQL refuses it in text
    "\x1b",  # escape
    "\x7f",
    "\x85",  # C1 next line
    "\u202e",  # right-to-left override
    "\u2066",  # left-to-right isolate
    "\u200b",  # zero-width space
    "\u200d",  # zero-width joiner
    "\u2060",  # word joiner
    "\ufeff",  # byte order mark
    "\u00ad",  # soft hyphen
    "\u2028",  # line separator
    "\ud800",  # an unpaired surrogate (cannot be encoded)
    "\ue000",  # private use
    "\u3164",  # Hangul filler: a letter that renders as nothing
    "\n",
    "\t",
]


@pytest.mark.parametrize("char", HIDDEN, ids=lambda c: f"U+{ord(c):04X}")
@pytest.mark.parametrize("field", ["name", "line"])
def test_names_and_lines_refuse_hidden_characters(field: str, char: str) -> None:
    # pydantic itself may refuse an unpaired surrogate first
    assert _refused(**{field: f"pay{char}roll"}) in (["invalid_characters"], ["string_unicode"])


def test_a_name_is_normalized_and_its_whitespace_collapsed() -> None:
    composed = Thing.model_validate({"name": "  Cafe\u0301\u00a0 prod\u3000 "}).name
    assert composed == "Caf\u00e9 prod"


def test_names_keep_letters_of_every_script() -> None:
    for name in ("Équipe données", "مشروع", "프로젝트", "проект", "数据 🚀"):
        assert Thing.model_validate({"name": name}).name == name


def test_a_line_is_kept_as_given() -> None:
    assert Thing.model_validate({"line": " a  b "}).line == " a  b "


@pytest.mark.parametrize(
    "char",
    ["\x00", "\x1b", "\r", "\x85", "\u202e", "\u2067", "\u200b", "\u2060", "\ufeff", "\ud800"],
)
def test_text_refuses_controls_and_bidi_controls(char: str) -> None:
    assert _refused(text=f"notes{char}") in (["invalid_characters"], ["string_unicode"])


def test_text_allows_tabs_newlines_and_joiners() -> None:
    text = "line one\n\tline two 👩\u200d💻 \u200f"
    assert Thing.model_validate({"text": text}).text == text


@pytest.mark.parametrize("char", ["\x00", "\udc00"])
def test_values_refuse_only_nul_and_surrogates(char: str) -> None:
    assert _refused(value=f"a{char}b") in (["invalid_characters"], ["string_unicode"])


def test_values_keep_everything_else() -> None:
    value = "-----BEGIN-----\r\nx\x1b[0m\u202e\u200b\ttail\n"
    assert Thing.model_validate({"value": value}).value == value


@pytest.mark.parametrize(
    ("field", "loose"),
    [
        *[("size", True), ("size", "80"), ("size", 1.0), ("ratio", "1.5"), ("ratio", False)],
        *[("on", 1), ("on", "true"), ("on", "yes"), ("name", 5), ("text", ["a"])],
    ],
)
def test_numbers_booleans_and_strings_are_strict(field: str, loose: object) -> None:
    assert len(_refused(**{field: loose})) == 1


def test_strict_types_still_take_their_own_values() -> None:
    thing = Thing.model_validate({"size": 80, "ratio": 2, "on": True})
    assert (thing.size, thing.ratio, thing.on) == (80, 2.0, True)


def test_ids_and_times_come_as_strings_from_json() -> None:
    ref = uuid.uuid4()
    thing = Thing.model_validate({"ref": str(ref), "at": "2026-01-02T03:04:05Z"})
    assert thing.ref == ref
    assert thing.at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert _refused(ref="not-a-uuid") == ["uuid_parsing"]


def test_unknown_fields_are_refused() -> None:
    assert _refused(extra=1) == ["extra_forbidden"]


def test_the_message_never_quotes_the_input() -> None:
    with pytest.raises(ValidationError) as caught:
        Thing.model_validate({"name": "evil\u202eexe.txt"})
    assert "\u202e" not in caught.value.errors()[0]["msg"]
