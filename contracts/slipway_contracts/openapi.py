"""The public API's committed OpenAPI document and the compatibility rule between two of them.

``contracts/openapi.json`` is written by ``make openapi`` (``deploy/openapi.py``) and served as
it is by the gateway. As for the events (``schemas.py``), a client written against the committed
document must keep working: ``breaking_changes`` lists what would break one. An operation or a
success answer removed; in an answer, a field removed, no longer always present or given a type
a client does not expect (wider); in a request, a new required field or parameter, a field made
required, removed, or narrowed (a type, a value or a bound it accepted is refused). A union told
apart by a discriminator (a service is one object per kind) is compared member by member.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

DOCUMENT_PATH = Path(__file__).parent.parent / "openapi.json"
METHODS = ("get", "put", "post", "delete", "patch")

Document = dict[str, Any]
Direction = Literal["request", "response"]


def load(path: Path = DOCUMENT_PATH) -> Document:
    document: Document = json.loads(path.read_text())
    return document


def breaking_changes(old: Document, new: Document) -> list[str]:
    problems: list[str] = []
    for path, operations in old.get("paths", {}).items():
        for method in METHODS:
            if method not in operations:
                continue
            where = f"{method.upper()} {path}"
            after = new.get("paths", {}).get(path, {}).get(method)
            if after is None:
                problems.append(f"{where}: removed")
                continue
            problems += _operation(where, operations[method], after, old, new)
    return problems


def _operation(
    where: str, old: Document, new: Document, old_doc: Document, new_doc: Document
) -> list[str]:
    compare = _Comparison(old_doc, new_doc)
    problems = compare.parameters(where, old.get("parameters", []), new.get("parameters", []))
    old_body, new_body = old.get("requestBody"), new.get("requestBody")
    if new_body is not None:
        if new_body.get("required") and (old_body is None or not old_body.get("required")):
            problems.append(f"{where} body: now required")
        if old_body is not None:
            problems += compare.schemas(
                f"{where} body", _json(old_body), _json(new_body), "request"
            )
    for status, answer in old.get("responses", {}).items():
        if not status.startswith("2"):
            continue
        if status not in new.get("responses", {}):
            problems.append(f"{where} {status}: removed")
            continue
        problems += compare.schemas(
            f"{where} {status}", _json(answer), _json(new["responses"][status]), "response"
        )
    return problems


def _json(holder: Document) -> Document | None:
    schema: Document | None = holder.get("content", {}).get("application/json", {}).get("schema")
    return schema


class _Comparison:
    def __init__(self, old_doc: Document, new_doc: Document) -> None:
        self.old_doc, self.new_doc = old_doc, new_doc

    def parameters(self, where: str, old: list[Document], new: list[Document]) -> list[str]:
        problems = []
        before = {(p["in"], p["name"]): p for p in old}
        after = {(p["in"], p["name"]): p for p in new}
        for key, parameter in after.items():
            if key not in before and parameter.get("required"):
                problems.append(f"{where} {key[0]} {key[1]}: new required parameter")
        for key, parameter in before.items():
            if key not in after:
                problems.append(f"{where} {key[0]} {key[1]}: parameter removed")
                continue
            if after[key].get("required") and not parameter.get("required"):
                problems.append(f"{where} {key[0]} {key[1]}: now required")
            problems += self.schemas(
                f"{where} {key[0]} {key[1]}",
                parameter.get("schema"),
                after[key].get("schema"),
                "request",
            )
        return problems

    def schemas(
        self, where: str, old: Document | None, new: Document | None, direction: Direction
    ) -> list[str]:
        if old is None or new is None:
            return [f"{where}: schema removed"] if old is not None and new is None else []
        old, new = self._resolve(old, self.old_doc), self._resolve(new, self.new_doc)
        old_kinds, new_kinds = self._tagged(old, self.old_doc), self._tagged(new, self.new_doc)
        if new_kinds is not None:
            return self._union(where, old, old_kinds, new_kinds, direction)
        old_props, new_props = old.get("properties"), new.get("properties")
        if old_props is not None and new_props is not None:
            return self._objects(where, old, new, direction)
        if old.get("type") == "array" and new.get("type") == "array":
            return self.schemas(f"{where}[]", old.get("items"), new.get("items"), direction)
        return _scalar(
            where,
            self._types(old, self.old_doc),
            self._types(new, self.new_doc),
            old,
            new,
            direction,
        )

    def _objects(self, where: str, old: Document, new: Document, direction: Direction) -> list[str]:
        problems = []
        old_props, new_props = old["properties"], new["properties"]
        old_req, new_req = set(old.get("required", [])), set(new.get("required", []))
        for name, schema in old_props.items():
            field = f"{where}.{name}"
            if name not in new_props:
                problems.append(f"{field}: removed")
                continue
            if direction == "response" and name in old_req and name not in new_req:
                problems.append(f"{field}: no longer always present")
            if direction == "request" and name not in old_req and name in new_req:
                problems.append(f"{field}: now required")
            problems += self.schemas(field, schema, new_props[name], direction)
        for name in new_props.keys() - old_props.keys():
            if direction == "request" and name in new_req:
                problems.append(f"{where}.{name}: new required field")
        return problems

    def _union(
        self,
        where: str,
        old: Document,
        old_kinds: dict[str, Document] | None,
        new_kinds: dict[str, Document],
        direction: Direction,
    ) -> list[str]:
        """A discriminated union (one object per ``kind``) compared member by member: an
        object it replaced is compared with each member, a union with the same tag's."""
        problems: list[str] = []
        if old_kinds is None:
            if "properties" not in old:
                return problems
            old_kinds = dict.fromkeys(new_kinds, old)
        for tag, member in old_kinds.items():
            if tag in new_kinds:
                problems += self._objects(f"{where}[{tag}]", member, new_kinds[tag], direction)
            elif direction == "request":
                problems.append(f"{where}[{tag}]: no longer accepted")
        return problems

    def _tagged(self, node: Document, root: Document) -> dict[str, Document] | None:
        """A discriminated union's members by tag (objects), or None."""
        mapping = node.get("discriminator", {}).get("mapping")
        if not mapping:
            return None
        return {tag: self._resolve({"$ref": ref}, root) for tag, ref in mapping.items()}

    def _resolve(self, node: Document, root: Document) -> Document:
        while isinstance(node.get("$ref"), str):
            target: Any = root
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            node = target
        return node

    def _types(self, node: Document, root: Document) -> set[str]:
        """The JSON types a schema allows (``any``: no constraint)."""
        node = self._resolve(node, root)
        if "anyOf" in node or "oneOf" in node:
            members = node.get("anyOf", []) + node.get("oneOf", [])
            return set().union(*(self._types(m, root) for m in members))
        kind = node.get("type")
        if kind is None:
            return {"object"} if "properties" in node else {"any"}
        kinds = {kind} if isinstance(kind, str) else set(kind)
        return {f"{k}:{node['format']}" if "format" in node else k for k in kinds}


_UPPER = ("maxLength", "maximum", "maxItems", "exclusiveMaximum")
_LOWER = ("minLength", "minimum", "minItems", "exclusiveMinimum")


def _scalar(
    where: str,
    old_types: set[str],
    new_types: set[str],
    old: Document,
    new: Document,
    direction: Direction,
) -> list[str]:
    if direction == "response":
        # a client knows the values the old document answered; anything else surprises it
        if "any" not in old_types and new_types - old_types:
            return [f"{where}: type widened to {sorted(new_types)}"]
        return []
    if "any" not in new_types and old_types - new_types:
        return [f"{where}: type narrowed to {sorted(new_types)}"]
    problems = []
    old_enum, new_enum = old.get("enum"), new.get("enum")
    if new_enum is not None and (old_enum is None or set(old_enum) - set(new_enum)):
        problems.append(f"{where}: values narrowed to {new_enum}")
    for bound in _UPPER:
        if bound in new and (bound not in old or new[bound] < old[bound]):
            problems.append(f"{where}: {bound} narrowed to {new[bound]}")
    for bound in _LOWER:
        if bound in new and (bound not in old or new[bound] > old[bound]):
            problems.append(f"{where}: {bound} narrowed to {new[bound]}")
    if new.get("pattern") not in (None, old.get("pattern")):
        problems.append(f"{where}: pattern narrowed")
    return problems
