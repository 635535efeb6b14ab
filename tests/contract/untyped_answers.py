"""Which public operations answer something their document does not type.

A success answer is untyped when it has no content, a media type without a schema, or a schema
that says nothing: ``{}``, or an object open to any field (``additionalProperties`` true or
left out) that names no property and is no union. ``--nested`` also lists the fields inside
typed answers that are untyped that way (an object or an array item that says nothing).

Run it over the committed document (or another one):
``.venv/bin/python tests/contract/untyped_answers.py [--nested] [contracts/openapi.json]``;
``test_typed_answers.py`` fails on any operation it lists that is not allowed with a reason.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

Document = dict[str, Any]
REF = "#/components/schemas/"
METHODS = ("get", "put", "post", "delete", "patch")
_COMBINATIONS = ("oneOf", "anyOf", "allOf")


def says_nothing(schema: Document | None) -> bool:
    """``{}`` or an object that may hold anything and names nothing."""
    if not schema:
        return True
    if any(key in schema for key in (*_COMBINATIONS, "$ref", "const", "enum")):
        return False
    kind = schema.get("type")
    open_object = schema.get("additionalProperties", True) is True
    return kind in (None, "object") and open_object and not schema.get("properties")


def untyped_answers(document: Document) -> list[str]:
    """``"METHOD /path STATUS [media type]: why"`` for each untyped success answer."""
    found = []
    for method, path, operation in _operations(document):
        for status, answer in operation.get("responses", {}).items():
            if not status.startswith("2") or status == "204":
                continue
            where = f"{method.upper()} {path} {status}"
            content = answer.get("content")
            if not content:
                found.append(f"{where}: no content")
                continue
            for media, declared in content.items():
                schema = declared.get("schema", declared.get("itemSchema"))
                if schema is None:
                    found.append(f"{where} {media}: no schema")
                elif says_nothing(_resolve(document, schema)):
                    found.append(f"{where} {media}: says nothing ({json.dumps(schema)})")
    return found


def untyped_fields(document: Document) -> list[str]:
    """``"METHOD /path STATUS: Model.field"`` for each untyped part inside a success answer."""
    found = []
    for method, path, operation in _operations(document):
        for status, answer in operation.get("responses", {}).items():
            if not status.startswith("2"):
                continue
            for declared in answer.get("content", {}).values():
                schema = declared.get("schema", declared.get("itemSchema")) or {}
                for part in _parts(document, schema, "", frozenset()):
                    found.append(f"{method.upper()} {path} {status}: {part}")
    return sorted(set(found))


def _operations(document: Document) -> Iterator[tuple[str, str, Document]]:
    for path, operations in document.get("paths", {}).items():
        for method in METHODS:
            if method in operations:
                yield method, path, operations[method]


def _resolve(document: Document, schema: Document) -> Document:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].removeprefix(REF)]
    return schema


def _parts(document: Document, schema: Document, at: str, seen: frozenset[str]) -> Iterator[str]:
    if "$ref" in schema:
        name = schema["$ref"].removeprefix(REF)
        if name not in seen:
            yield from _parts(document, _resolve(document, schema), name, seen | {name})
        return
    if at and says_nothing(schema):
        yield at
        return
    for name, field in schema.get("properties", {}).items():
        yield from _parts(document, field, f"{at}.{name}", seen)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            yield from _parts(document, schema[key], f"{at}[]", seen)
    for key in _COMBINATIONS:
        for member in schema.get(key, []):
            yield from _parts(document, member, at, seen)


def main(argv: list[str]) -> int:
    nested = "--nested" in argv
    paths = [arg for arg in argv if not arg.startswith("--")]
    path = Path(paths[0]) if paths else Path(__file__).parents[2] / "contracts" / "openapi.json"
    document = json.loads(path.read_text())
    found = untyped_answers(document) + (untyped_fields(document) if nested else [])
    sys.stdout.write("".join(line + "\n" for line in found))
    sys.stdout.write(f"{len(found)} untyped\n")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
