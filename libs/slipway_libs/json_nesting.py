"""A bound on how deeply a JSON body nests, checked without parsing it.

Python's JSON parser recurses once per array or object: a small body nested a thousand deep
raises ``RecursionError`` (a 500), and whatever walks the parsed value recursively later (a merge
patch, a validator) can hit it too. The check here never recurses and never builds the value:

1. drop the escaped backslashes and quotes, then every string: their brackets are text, not
   structure (an unterminated string, the parser's error, counts as one too);
2. keep only the brackets, ``{}`` written as ``[]`` (only depth matters here; a mismatch is the
   parser's to report, and it stops there, no deeper than the openers before it);
3. peel off the innermost level (every ``[]``) once per pass: ``bytes.replace`` does not look
   again at the pairs its removals create, so a well-nested sequence is empty after exactly as
   many passes as it is deep, and at most ``limit`` linear passes decide, however hostile.

A sequence that stops shrinking before it is empty (``]`` before its ``[``, or an unclosed
``[``) is not JSON.
"""

from __future__ import annotations

from typing import Final

from slipway_libs.errors import BusinessError

MAX_DEPTH: Final = 32

_NOT_BRACKET: Final = bytes(b for b in range(256) if b not in b"[]{}")
_AS_SQUARE: Final = bytes.maketrans(b"{}", b"[]")


def check_nesting(body: bytes, *, limit: int = MAX_DEPTH) -> None:
    """Refuse a body nested deeper than ``limit`` (400 ``JSON_TOO_DEEP``), or whose brackets do
    not pair up (400 ``MALFORMED_JSON``)."""
    unescaped = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    text = b"".join(unescaped.split(b'"')[::2])  # the odd pieces are inside strings
    brackets = text.translate(_AS_SQUARE, _NOT_BRACKET)
    if brackets.count(b"[") <= limit:
        return  # no deeper than its number of openers (a malformed rest is the parser's to say)
    for _ in range(limit):
        peeled = brackets.replace(b"[]", b"")
        if not peeled:
            return
        if len(peeled) == len(brackets):
            raise BusinessError(
                "The request body is not valid JSON.", code="MALFORMED_JSON", status_code=400
            )
        brackets = peeled
    raise BusinessError(
        f"The request body nests arrays and objects deeper than {limit} levels.",
        code="JSON_TOO_DEEP",
        status_code=400,
        details={"max_depth": limit},
    )
