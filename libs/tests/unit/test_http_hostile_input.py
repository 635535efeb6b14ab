"""What every service's app refuses before a route runs: deep JSON, a NUL in the query; and an
error that echoes hostile text still renders."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, ConfigDict

from slipway_libs.errors import InvalidInput
from slipway_libs.http import create_app
from slipway_libs.json_nesting import MAX_DEPTH


class Thing(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str


def _client() -> httpx.AsyncClient:
    router = APIRouter()

    @router.post("/things")
    async def create(thing: Thing) -> Thing:
        return thing

    @router.post("/anything")
    async def anything(body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
        return body

    @router.post("/checked")
    async def checked(body: Annotated[dict[str, Any], Body()]) -> None:
        raise InvalidInput("BAD_KEY", "No such key.", field=next(iter(body)))

    @router.get("/search")
    async def search(q: Annotated[str, Query()] = "") -> dict[str, str]:
        return {"q": q}

    app = create_app(service="t", routers=[router], max_body_bytes=100_000)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://t")


def _deep(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


async def test_json_nested_deeper_than_the_bound_is_a_400() -> None:
    async with _client() as client:
        for depth in (MAX_DEPTH + 1, 1000, 10_000):
            response = await client.post(
                "/anything", content=_deep(depth), headers={"content-type": "application/json"}
            )
            assert response.status_code == 400, depth
            assert response.json()["error"]["code"] == "JSON_TOO_DEEP"
        within = await client.post(
            "/anything", content=_deep(MAX_DEPTH), headers={"content-type": "application/json"}
        )
    assert within.status_code == 200
    assert within.content.count(b"{") == MAX_DEPTH


async def test_a_chunked_body_is_checked_and_passed_on_whole() -> None:
    async def chunks(body: bytes) -> Any:
        for start in range(0, len(body), 7):
            yield body[start : start + 7]

    async with _client() as client:
        deep = await client.post(
            "/anything", content=chunks(_deep(100)), headers={"content-type": "application/json"}
        )
        fine = await client.post(
            "/things",
            content=chunks(b'{"name": "' + b"n" * 50 + b'"}'),
            headers={"content-type": "application/json"},
        )
    assert deep.json()["error"]["code"] == "JSON_TOO_DEEP"
    assert fine.status_code == 200
    assert fine.json() == {"name": "n" * 50}


async def test_a_nul_in_the_query_is_a_400() -> None:
    async with _client() as client:
        refused = await client.get("/search?q=a%00b")
        fine = await client.get("/search?q=a%20b")
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "INVALID_QUERY"
    assert fine.json() == {"q": "a b"}


async def test_an_error_echoing_an_unpaired_surrogate_still_renders() -> None:
    """A validation error names the failing field, which may be a key the client chose."""
    async with _client() as client:
        response = await client.post(
            "/checked",
            content=b'{"\\ud800": 1}',
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 422
    assert response.json()["error"]["details"] == {"field": "\ud800"}
