"""The logs routes in the gateway's OpenAPI document carry their schemas (issue 12): query
parameters, the page and line JSON, the ``text/event-stream`` form of ``follow=true``, the
WebSocket that relays it, and the organization's retention (answer and body)."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from slipway_gateway.api.proxy import Upstreams
from slipway_gateway.api.routes import Gateway, TokenUsage
from slipway_gateway.domain.projection import AccessProjection

REF = "#/components/schemas/"
READS = ("/api/v1/deployments/{deployment}/logs", "/api/v1/services/{service}/logs")
RETENTION = "/api/v1/organizations/{org}/log-retention"


def _document() -> dict[str, Any]:
    gateway = Gateway(
        projection=AccessProjection(),
        upstreams=Upstreams(http=httpx.AsyncClient(), urls={}, internal_token=None),
        usage=TokenUsage(),
    )
    app = FastAPI()
    app.include_router(gateway.router())
    return app.openapi()


def test_the_log_reads_document_their_parameters_page_and_event_stream() -> None:
    document = _document()
    schemas = document["components"]["schemas"]
    line = schemas["LogLine"]
    assert set(line["required"]) >= {"cursor", "at", "kind", "stream", "text"}
    assert schemas["LogPage"]["properties"]["items"]["items"] == {"$ref": f"{REF}LogLine"}
    for path in READS:
        operation = document["paths"][path]["get"]
        parameters = {(p["in"], p["name"]): p for p in operation["parameters"]}
        path_id = path.split("{")[1].split("}")[0]
        assert parameters[("path", path_id)]["required"] is True
        for name in ("follow", "since", "until", "stream", "q", "tail", "limit", "after"):
            assert ("query", name) in parameters, (path, name)
        assert parameters[("query", "q")]["schema"]["maxLength"] == 256
        assert parameters[("query", "stream")]["schema"]["enum"] == ["stdout", "stderr", "system"]
        assert ("header", "Last-Event-ID") in parameters
        content = operation["responses"]["200"]["content"]
        assert content["application/json"]["schema"] == {"$ref": f"{REF}LogPage"}
        events = content["text/event-stream"]
        data = events["itemSchema"]["properties"]["data"]["contentSchema"]["oneOf"]
        assert {"$ref": f"{REF}LogLine"} in data
        assert {d.get("title") for d in data} >= {"LogSkipped", "LogResume", "LogEnd"}
        assert operation["x-websocket"]["path"] == f"{path}/ws"
        assert operation["x-websocket"]["messages"]["line"] == {"$ref": f"{REF}LogLine"}


def test_the_retention_routes_document_their_answer_and_body() -> None:
    item = _document()["paths"][RETENTION]
    for method in ("get", "put"):
        answer = item[method]["responses"]["200"]["content"]["application/json"]["schema"]
        assert answer == {"$ref": f"{REF}LogRetention"}
    body = item["put"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["days"]
    assert {"minimum": 1, "type": "integer"} in body["properties"]["days"]["anyOf"]


def test_other_routes_are_documented_as_before() -> None:
    operation = _document()["paths"]["/api/v1/organizations/{org}/clusters"]["get"]
    assert "parameters" not in operation
    assert operation["x-slipway-action"] == "cluster:read"
