"""Names people give to projects, environments and stages."""

from __future__ import annotations

import unicodedata

from slipway_libs.errors import InvalidInput
from slipway_libs.fields import has_hidden_characters


def display_name(value: str, *, field: str = "name", max_length: int = 100) -> str:
    # checked before whitespace is collapsed: split() would turn some controls into spaces
    if has_hidden_characters(value):
        message = "No control, format (bidi, zero-width) or invisible characters."
        raise InvalidInput("INVALID_NAME", message, field=field)
    value = " ".join(unicodedata.normalize("NFC", value).split())
    if not value:
        raise InvalidInput("INVALID_NAME", "The name cannot be empty.", field=field)
    if len(value) > max_length:
        raise InvalidInput("INVALID_NAME", f"At most {max_length} characters.", field=field)
    return value
