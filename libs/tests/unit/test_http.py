"""The HTTP error model and limits every service shares."""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter
from pydantic import BaseModel

from slipway_libs.errors import BusinessError
from slipway_libs.http import create_app


class Thing(BaseModel):
    name: str
    size: int


def _app() -> httpx.AsyncClient:
    router = APIRouter()

    @router.post("/things", status_code=201)
    async def create(thing: Thing) -> Thing:
        if thing.name == "taken":
            raise BusinessError(
                "That name is taken.",
                code="THING_NAME_TAKEN",
                status_code=409,
                details={"name": "taken"},
            )
        if thing.name == "boom":
            raise RuntimeError("secret internals")
        return thing

    async def failing() -> None:
        raise ConnectionError("db down")

    async def fine() -> dict[str, int]:
        return {"brokers": 1}

    app = create_app(
        service="t", routers=[router], readiness={"db": failing, "kafka": fine}, max_body_bytes=1000
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://t")


async def test_valid_request_passes() -> None:
    async with _app() as client:
        response = await client.post("/things", json={"name": "a", "size": 1})
    assert response.status_code == 201
    assert response.json() == {"name": "a", "size": 1}
    assert response.headers["x-correlation-id"]


async def test_malformed_json_is_a_400_with_a_stable_code() -> None:
    async with _app() as client:
        response = await client.post(
            "/things", content=b'{"name": ', headers={"content-type": "application/json"}
        )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "MALFORMED_JSON"


async def test_wrong_types_name_the_failing_field() -> None:
    async with _app() as client:
        response = await client.post("/things", json={"name": "a", "size": "big"})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert [d["path"] for d in error["details"]] == ["size"]


@pytest.mark.parametrize("chunked", [False, True])
async def test_oversized_body_is_refused(chunked: bool) -> None:
    body = b'{"name": "' + b"x" * 5000 + b'", "size": 1}'

    async def stream():  # type: ignore[no-untyped-def]
        yield body

    async with _app() as client:
        response = await client.post(
            "/things",
            content=stream() if chunked else body,
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"


async def test_business_errors_keep_their_status_and_code() -> None:
    async with _app() as client:
        response = await client.post("/things", json={"name": "taken", "size": 1})
    assert response.status_code == 409
    assert response.json() == {
        "error": {
            "code": "THING_NAME_TAKEN",
            "message": "That name is taken.",
            "details": {"name": "taken"},
        }
    }


async def test_unexpected_errors_answer_500_without_internals() -> None:
    async with _app() as client:
        response = await client.post("/things", json={"name": "boom", "size": 1})
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "INTERNAL"
    assert "secret" not in response.text


async def test_unknown_route_and_method_use_the_error_model() -> None:
    async with _app() as client:
        missing = await client.get("/nope")
        wrong = await client.get("/things")
    assert missing.json()["error"]["code"] == "NOT_FOUND"
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "METHOD_NOT_ALLOWED"


async def test_readiness_reports_each_check_and_fails_if_one_fails() -> None:
    async with _app() as client:
        health = await client.get("/healthz")
        ready = await client.get("/readyz")
    assert health.status_code == 200
    assert ready.status_code == 503
    checks = ready.json()["checks"]
    assert checks["db"]["ok"] is False and "db down" in checks["db"]["error"]
    assert checks["kafka"]["ok"] is True and checks["kafka"]["brokers"] == 1


async def test_correlation_id_is_echoed() -> None:
    async with _app() as client:
        response = await client.get("/healthz", headers={"x-correlation-id": "abc-1"})
    assert response.headers["x-correlation-id"] == "abc-1"
