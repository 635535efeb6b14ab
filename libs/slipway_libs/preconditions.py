"""Concurrent edits: a resource's version as its ``ETag``, and ``If-Match`` checked on writes.

Two users read version 7 and both send a change; without a precondition the second silently
overwrites the first. With ``If-Match: "7"`` the second finds version 8 and answers 412
``PRECONDITION_FAILED`` (the current version in the details and the ``ETag`` header), so it can
read again and decide. Without ``If-Match`` a write goes through as before (last writer wins).

Only strong tags compare (RFC 9110: ``If-Match`` uses the strong comparison): ``"7"`` or ``*``
(any current version); a bare ``7`` is accepted too, as clients often drop the quotes.
"""

from __future__ import annotations

from slipway_libs.errors import BusinessError

IF_MATCH = "If-Match"
ETAG = "ETag"


def etag(version: int) -> str:
    return f'"{version}"'


class PreconditionFailed(BusinessError):
    status_code = 412
    code = "PRECONDITION_FAILED"

    def __init__(self, current: int) -> None:
        super().__init__(
            "The resource changed since the version named in If-Match: read it again.",
            details={"current_version": current, "etag": etag(current)},
            headers={ETAG: etag(current)},
        )


def matches(if_match: str, current: int) -> bool:
    """Whether an ``If-Match`` value admits the current version."""
    for tag in (part.strip() for part in if_match.split(",")):
        if tag == "*" or tag in (etag(current), str(current)):
            return True
    return False


def require(if_match: str | None, current: int) -> None:
    """Raises 412 unless there is no precondition or it admits the current version."""
    if if_match is not None and not matches(if_match, current):
        raise PreconditionFailed(current)
