"""A service's internal API as an OpenAPI document: what the gateway's public document is
assembled from (``make openapi``), so each public operation's request and answer schemas are
the ones the service itself declares.

Request bodies, parameters and statuses come from the routes (FastAPI). What a route answers is
declared beside it in the service's ``api/answers.py`` models and its ``ANSWERS`` registry
(``"POST /internal/v1/…"`` → model): documentation only, the routes still build their answers
(a model there filters nothing); ``fragment`` refuses a registry entry that names no route, and
the conformance test (schemathesis, tests/e2e) checks every answer against its model.

The routers are built with placeholders: building one registers routes and touches nothing
(no pool, no settings); only handling a request would use them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from fastapi import APIRouter
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.json_schema import models_json_schema

NOTHING: Any = None  # stands in for a pool or a dependency the document does not need
REF = "#/components/schemas/"
Answers = Mapping[str, type[BaseModel]]


class Answer(BaseModel):
    """An answer's documented shape: fields may be added (clients ignore unknown ones)."""

    model_config = ConfigDict(extra="allow")


Time = datetime  # ISO 8601 with its offset


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


def fragment(
    service: str, routers: Sequence[APIRouter], answers: Answers | None = None
) -> dict[str, Any]:
    routes = [route for router in routers for route in router.routes]
    document = get_openapi(
        title=f"slipway-{service} (internal)", version="1", openapi_version="3.1.0", routes=routes
    )
    if answers:
        _declare(document, answers)
    return document


def _declare(document: dict[str, Any], answers: Answers) -> None:
    models = list(dict.fromkeys(answers.values()))
    refs, definitions = models_json_schema(
        [(m, "serialization") for m in models], ref_template=REF + "{model}"
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(definitions.get("$defs", {}))
    for key, model in answers.items():
        method, path = key.split(" ", 1)
        operation = document["paths"].get(path, {}).get(method.lower())
        if operation is None:
            raise LookupError(f"ANSWERS names {key}, which no route serves")
        status = next(code for code in operation["responses"] if code.startswith("2"))
        answer = operation["responses"][status]
        answer["content"] = {"application/json": {"schema": refs[(model, "serialization")]}}
