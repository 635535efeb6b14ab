"""The typed client's service answers (``api.*Service``) name the fields the public document
answers for each kind, nested objects included: the client mirrors the document, and this
keeps the mirror from drifting when the catalog's specs change (``make openapi``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import pytest

from slipway_cli import api

DOCUMENT = Path(__file__).parents[2] / "contracts" / "openapi.json"
REF = "#/components/schemas/"


@pytest.fixture(scope="module")
def schemas() -> dict[str, Any]:
    found: dict[str, Any] = json.loads(DOCUMENT.read_text())["components"]["schemas"]
    return found


def _keys(typed: type) -> set[str]:
    return set(typed.__required_keys__ | typed.__optional_keys__)  # type: ignore[attr-defined]


def _nested(typed: type) -> dict[str, type]:
    """The TypedDicts a TypedDict's fields hold (directly, in a list, or one of a union)."""
    found = {}
    for hint in get_type_hints(typed).values():
        stack = [hint]
        while stack:
            current = stack.pop()
            if hasattr(current, "__required_keys__"):
                found[current.__name__] = current
            elif get_origin(current) is not None:
                stack += get_args(current)
    return found


def test_each_kind_has_its_typed_answer(schemas: dict[str, Any]) -> None:
    mapping = schemas["ServiceOut"]["discriminator"]["mapping"]
    assert set(api.SERVICE_OF_KIND) == set(mapping)
    pending: dict[str, type] = {}
    for kind, typed in api.SERVICE_OF_KIND.items():
        member = schemas[mapping[kind].removeprefix(REF)]
        assert _keys(typed) == set(member["properties"]), kind
        pending |= _nested(typed)
    seen: set[str] = set()
    while pending:
        name, typed = pending.popitem()
        if name in seen:
            continue
        seen.add(name)
        assert _keys(typed) == set(schemas[name]["properties"]), name
        pending |= _nested(typed)
    assert {"GitSource", "ImageSource", "Port", "Healthchecks", "Probe", "GitChart"} <= seen
