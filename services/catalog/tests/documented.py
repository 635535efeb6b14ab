"""Is an answer what the catalog documents (``api.answers``)? Two ways it was not: a field the
document calls required that a real answer leaves out (the route's ``response_model`` then
refuses its own answer: a 500), and a field the answer carries that the document does not name
(``Answer`` lets it through, so no client generated from the document knows it)."""

from __future__ import annotations

from typing import Any

from fastapi.routing import APIRoute
from pydantic import BaseModel

from slipway_catalog.api.routes import build_router
from slipway_libs.openapi import NOTHING


def route(key: str) -> APIRoute:
    """The catalog's route for ``"METHOD /internal/v1/..."`` (as ``api.answers.ANSWERS`` keys)."""
    method, path = key.split(" ", 1)
    for found in build_router(NOTHING, NOTHING, NOTHING, {}).routes:
        if isinstance(found, APIRoute) and found.path == path and method in (found.methods or ()):
            return found
    raise LookupError(key)


def as_sent(key: str, body: Any) -> Any:
    """``body`` as the route sends it: validated by its model (a missing required field raises
    here, where FastAPI would answer 500) and written out as FastAPI writes it."""
    served = route(key)
    model = served.response_model
    assert isinstance(model, type) and issubclass(model, BaseModel), key
    return model.model_validate(body).model_dump(
        mode="json", exclude_unset=served.response_model_exclude_unset
    )


def undocumented(model: type[BaseModel], body: Any) -> list[str]:
    """The paths of the fields in ``body`` that the model's document (its JSON schema, as the
    OpenAPI document carries it) does not name, nested objects and lists included."""
    schema = model.model_json_schema(mode="serialization")
    found: list[str] = []
    _walk(schema, schema.get("$defs", {}), body, "", found)
    return found


def _walk(
    node: dict[str, Any], defs: dict[str, Any], value: Any, where: str, out: list[str]
) -> None:
    if "$ref" in node:
        node = defs[node["$ref"].rsplit("/", 1)[-1]]
    if len(node.get("allOf", ())) == 1:  # a reference with its own description, in some versions
        node = node["allOf"][0]
        if "$ref" in node:
            node = defs[node["$ref"].rsplit("/", 1)[-1]]
    members = node.get("anyOf") or node.get("oneOf")
    if members:
        # the member this value is: an object for a dict, a list for a list (tagged unions of
        # objects are told apart by their ``kind``, which each member's schema fixes)
        for member in members:
            resolved = defs[member["$ref"].rsplit("/", 1)[-1]] if "$ref" in member else member
            if _fits(resolved, value):
                _walk(resolved, defs, value, where, out)
                return
        return
    if isinstance(value, dict) and "properties" in node:
        for name, item in value.items():
            path = f"{where}.{name}" if where else name
            if name not in node["properties"]:
                out.append(path)
            else:
                _walk(node["properties"][name], defs, item, path, out)
    elif isinstance(value, list) and "items" in node:
        for item in value:
            _walk(node["items"], defs, item, f"{where}[]", out)


def _fits(schema: dict[str, Any], value: Any) -> bool:
    if isinstance(value, dict):
        if "properties" not in schema:
            return False
        kind = schema["properties"].get("kind", {}).get("const")
        return kind is None or value.get("kind") == kind
    if isinstance(value, list):
        return schema.get("type") == "array"
    return "properties" not in schema and schema.get("type") != "array"
