"""Field types of public request bodies: what a hostile client must not slip through.

PostgreSQL refuses NUL in text and nothing can encode a lone surrogate (both answered 500 once
they got that far); bidirectional overrides and zero-width characters make one name look like
another. So every text field of a public model uses one of these types, each refusing with a
pydantic error of type ``invalid_characters`` (the API answers 422 ``VALIDATION_ERROR`` with the
field's path):

- ``Name``: what people call things (organizations, projects, roles, tokens, users...): one line,
  NFC-normalized, whitespace collapsed; no control (Cc), format (Cf: bidi controls, zero-width
  characters, soft hyphen), surrogate, private-use or line/paragraph separator characters, nor
  the letters that render as nothing (Hangul fillers, the Braille blank).
- ``Line``: a one-line value compared as given (an email, a role, a key, a version, a path): the
  same refusals as ``Name``, but nothing is rewritten.
- ``Text``: free text (descriptions): tabs and newlines allowed; no other control character, no
  bidi embedding, override or isolate (the "trojan source" ones), no zero-width space, word
  joiner or byte order mark, no surrogate. The joiners (ZWJ, ZWNJ) and direction marks stay
  allowed: emoji, some scripts and mixed-direction text need them.
- ``Value``: data handed on untouched (variable values, passwords, command arguments): only NUL
  and lone surrogates are refused.

Numbers and booleans are strict: ``Model`` validates in strict mode, so ``true`` is not ``1`` and
``"80"`` is not ``80``. FastAPI validates bodies in Python mode, where strict mode also refuses
strings for ids and times, so those fields use ``Id`` and ``Instant`` (lax: JSON carries them as
strings).
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from datetime import datetime
from typing import Annotated, Final

from pydantic import AfterValidator, BaseModel, ConfigDict, Strict
from pydantic_core import PydanticCustomError

CODE: Final = "invalid_characters"

# categories no name may contain: control, format, surrogate, private use, line/paragraph sep.
_NAME_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})
# letters and symbols that render as blank space, the classic look-alike padding
_INVISIBLE: Final = frozenset("\u034f\u115f\u1160\u2800\u3164\uffa0")
_ASCII_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TEXT_REFUSED = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b\u2060\ufeff\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
_VALUE_REFUSED = re.compile(r"[\x00\ud800-\udfff]")


def _refuse(rule: str) -> PydanticCustomError:
    # the message never quotes the input: it may be the very character a terminal would act on
    return PydanticCustomError(CODE, rule)


def has_hidden_characters(value: str) -> bool:
    """Whether the text holds a character ``Name`` and ``Line`` refuse."""
    if value.isascii():
        return _ASCII_CONTROL.search(value) is not None
    return any(c in _INVISIBLE or unicodedata.category(c) in _NAME_CATEGORIES for c in value)


def _one_line(value: str) -> str:
    if has_hidden_characters(value):
        raise _refuse("no control, format (bidi, zero-width) or invisible characters")
    return value


def _name(value: str) -> str:
    _one_line(value)
    return " ".join(unicodedata.normalize("NFC", value).split())


def _text(value: str) -> str:
    if _TEXT_REFUSED.search(value):
        raise _refuse(
            "no control characters but tab and newline, no bidi controls or zero-width space"
        )
    return value


def _value(value: str) -> str:
    if _VALUE_REFUSED.search(value):
        raise _refuse("no NUL characters or unpaired surrogates")
    return value


Name = Annotated[str, AfterValidator(_name)]
Line = Annotated[str, AfterValidator(_one_line)]
Text = Annotated[str, AfterValidator(_text)]
Value = Annotated[str, AfterValidator(_value)]
Id = Annotated[uuid.UUID, Strict(False)]
Instant = Annotated[datetime, Strict(False)]


class Model(BaseModel):
    """A public request body: unknown fields refused, numbers and booleans strictly typed."""

    model_config = ConfigDict(extra="forbid", strict=True)
