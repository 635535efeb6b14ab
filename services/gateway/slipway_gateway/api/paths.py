"""Path parameters of public routes, and the internal URLs built from them.

Every path parameter of the public API is an id, and every id is a UUID. The gateway parses
each one before authenticating, authorizing or forwarding anything, and builds internal paths
only from the parsed values, each percent-encoded: a raw value such as ``..`` or ``%2E%2E``
must never reach an internal URL, where the HTTP client would collapse it into the parent
resource (the flaw that let ``DELETE …/api-tokens/%2E%2E`` delete an organization).
"""

from __future__ import annotations

import string
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from slipway_libs.errors import BusinessError


def path_ids(raw: Mapping[str, Any]) -> dict[str, uuid.UUID]:
    """Each path parameter as a UUID; anything else is refused with 422 ``INVALID_ID``."""
    return {name: _parse(name, value) for name, value in raw.items()}


def _parse(name: str, value: Any) -> uuid.UUID:
    text = str(value)
    # uuid.UUID also takes braces, "urn:uuid:" and 32 bare hex digits: only the canonical
    # hyphenated form is an id of this API, so that one resource has one URL
    try:
        parsed = uuid.UUID(text) if len(text) == 36 else None
    except ValueError:
        parsed = None
    if parsed is None or str(parsed) != text.lower():
        raise BusinessError(
            f"`{name}` must be an id (a UUID such as 3f2b0c1e-8a4d-4c1b-9e7f-0a1b2c3d4e5f).",
            code="INVALID_ID",
            status_code=422,
            details={"parameter": name, "value": _shown(text)},
        )
    return parsed


def _shown(text: str) -> str:
    """The refused value, safe to echo: printable ASCII only, and short."""
    printable = set(string.ascii_letters + string.digits + string.punctuation + " ")
    return "".join(c if c in printable else "?" for c in text[:80])


def internal_path(template: str, values: Mapping[str, uuid.UUID | str]) -> str:
    """``template`` with its ``{name}`` fields filled by ``values``, each percent-encoded."""
    return template.format_map({name: quote(str(value), safe="") for name, value in values.items()})
