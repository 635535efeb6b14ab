"""Names people give to projects, environments and stages."""

from __future__ import annotations

from slipway_libs.errors import InvalidInput


def display_name(value: str, *, field: str = "name", max_length: int = 100) -> str:
    value = " ".join(value.split())
    if not value:
        raise InvalidInput("INVALID_NAME", "The name cannot be empty.", field=field)
    if len(value) > max_length:
        raise InvalidInput("INVALID_NAME", f"At most {max_length} characters.", field=field)
    if any(ord(c) < 32 for c in value):
        raise InvalidInput("INVALID_NAME", "No control characters.", field=field)
    return value
