"""A service's internal API as an OpenAPI document: what the gateway's public document is
assembled from (``make openapi``), so each public operation's request and answer schemas are
the ones the service itself declares.

Request bodies, parameters and statuses come from the routes (FastAPI). What a route answers is
declared beside it in the service's ``api/answers.py`` models and its ``ANSWERS`` registry
(``"POST /internal/v1/…"`` → model): documentation only, the routes still build their answers
(a model there filters nothing); ``fragment`` refuses a registry entry that names no route, and
the conformance test (schemathesis, tests/e2e) checks every answer against its model. A route
that takes a raw JSON object (to validate it itself, as the catalog's service specs are) names
its body's schema the same way (``bodies``: key → JSON schema, its ``$defs`` made components).
A route that honours ``Idempotency-Key`` (the ``Once`` dependency reads the header itself)
gets the header documented here, so no route has to declare it twice. The refusals a route
answers beyond validation (a 409 ``*_NAME_TAKEN``, a state that forbids an action) are named
in ``refusals`` (key → status → stable codes, under ``x-slipway-codes``), beside the use cases
that raise them; the gateway lists them with the answers it adds itself.

The routers are built with placeholders: building one registers routes and touches nothing
(no pool, no settings); only handling a request would use them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    TypeAdapter,
    WithJsonSchema,
    create_model,
)
from pydantic.json_schema import models_json_schema

from slipway_libs.idempotency import KEY_HEADER, MAX_KEY_LENGTH, TTL_HOURS, idempotent

NOTHING: Any = None  # stands in for a pool or a dependency the document does not need
REF = "#/components/schemas/"
Answers = Mapping[str, type[BaseModel]]
Bodies = Mapping[str, dict[str, Any]]
Refusals = Mapping[str, Mapping[int, Sequence[str]]]
CODES = "x-slipway-codes"  # the stable codes an error answer carries


class Answer(BaseModel):
    """An answer's documented shape: fields may be added (clients ignore unknown ones)."""

    model_config = ConfigDict(extra="allow")


# ISO 8601 with its offset, written as every answer built from a row writes it
# (``datetime.isoformat``: ``+00:00``), not pydantic's ``Z``: one API, one spelling of a time
Time = Annotated[
    datetime,
    PlainSerializer(lambda value: value.isoformat(), return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}, mode="serialization"),
]


def page_of(model: type[BaseModel], *, cursor: type = str) -> type[BaseModel]:
    """``{"items": [model], "next_cursor": …}``, named ``<Model>Page``."""
    name = model.__name__.removesuffix("Out") + "Page"
    next_cursor: Any = cursor | None
    page: type[BaseModel] = create_model(
        name,
        __base__=Answer,
        items=(list[model], ...),  # type: ignore[valid-type]
        next_cursor=(next_cursor, Field(default=None, description="The next page's cursor.")),
    )
    return page


def schema_of(kind: Any, *, mode: Literal["validation", "serialization"] = "validation") -> Any:
    """A type's JSON schema as a body of ``bodies`` (references to components, ``$defs``)."""
    return TypeAdapter(kind).json_schema(ref_template=REF + "{model}", mode=mode)


def fragment(
    service: str,
    routers: Sequence[APIRouter],
    answers: Answers | None = None,
    bodies: Bodies | None = None,
    refusals: Refusals | None = None,
) -> dict[str, Any]:
    routes = [route for router in routers for route in router.routes]
    document = get_openapi(
        title=f"slipway-{service} (internal)", version="1", openapi_version="3.1.0", routes=routes
    )
    if answers:
        _declare(document, answers)
    for key, schema in (bodies or {}).items():
        _accept(document, key, schema)
    for key, statuses in (refusals or {}).items():
        responses = _operation(document, key)["responses"]
        for status, codes in statuses.items():
            answer = responses.setdefault(str(status), {"description": "Refused"})
            answer[CODES] = sorted({*answer.get(CODES, []), *codes})
    for route in routes:
        if isinstance(route, APIRoute) and _uses(route.dependant, idempotent):
            for method in route.methods or ():
                _idempotency_key(document["paths"][route.path_format][method.lower()])
    return document


def _operation(document: dict[str, Any], key: str) -> dict[str, Any]:
    method, path = key.split(" ", 1)
    operation: dict[str, Any] | None = document["paths"].get(path, {}).get(method.lower())
    if operation is None:
        raise LookupError(f"{key} is declared, but no route serves it")
    return operation


def _accept(document: dict[str, Any], key: str, schema: dict[str, Any]) -> None:
    schema = dict(schema)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(schema.pop("$defs", {}))
    _operation(document, key)["requestBody"] = {
        "required": True,
        "content": {"application/json": {"schema": schema}},
    }


def _uses(dependant: Dependant, call: Any) -> bool:
    return any(d.call is call or _uses(d, call) for d in dependant.dependencies)


def _idempotency_key(operation: dict[str, Any]) -> None:
    operation.setdefault("parameters", []).append(
        {
            "name": KEY_HEADER,
            "in": "header",
            "required": False,
            "description": (
                f"Safe retries: the same key and request within {TTL_HOURS} h answer the first "
                "answer again (with `Idempotent-Replayed: true`) and do nothing twice; the same "
                "key with another request answers 422 `IDEMPOTENCY_KEY_REUSED`, and while the "
                "first is still in progress 409 `IDEMPOTENCY_KEY_IN_USE`."
            ),
            "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
        }
    )


def _declare(document: dict[str, Any], answers: Answers) -> None:
    models = list(dict.fromkeys(answers.values()))
    refs, definitions = models_json_schema(
        [(m, "serialization") for m in models], ref_template=REF + "{model}"
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(definitions.get("$defs", {}))
    for key, model in answers.items():
        operation = _operation(document, key)
        status = next(code for code in operation["responses"] if code.startswith("2"))
        answer = operation["responses"][status]
        answer["content"] = {"application/json": {"schema": refs[(model, "serialization")]}}
