"""GET routes answered ahead of FastAPI's router answer exactly what the router answers: the same
app built with and without them is asked the same requests (ids in every form, refusals of a
dependency and of the endpoint, response models, route order, changes headers), and the routes
that should be answered ahead are (else the comparison would prove nothing)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Request
from pydantic import BaseModel
from starlette.responses import PlainTextResponse, Response

from slipway_libs import changes
from slipway_libs.actor import INTERNAL_TOKEN_HEADER, internal_guard, token_digest
from slipway_libs.errors import Missing
from slipway_libs.http import ChangesRoute, create_app
from slipway_libs.plain_routes import PlainRoutes
from slipway_libs.tenancy import tenant_scope

TOKEN = "internal-token-for-the-test"
ORG = uuid.UUID("0b8a5f8e-2f4e-4d7a-9a47-6d1f0e0c1a2b")
THING = uuid.UUID("7d3c1e52-9b1a-4c55-8f0e-1f2a3b4c5d6e")
WHEN = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
ACTOR = json.dumps({"type": "user", "user_id": str(uuid.UUID(int=1)), "organization_id": str(ORG)})


class ThingOut(BaseModel):
    id: uuid.UUID
    name: str
    created_at: datetime


def router() -> APIRouter:
    routes = APIRouter(
        prefix="/internal/v1",
        dependencies=[
            Depends(internal_guard({"lead": token_digest(TOKEN)})),
            Depends(tenant_scope(required=False)),
        ],
        route_class=ChangesRoute,
    )

    # a query parameter: FastAPI's, and picked before the id route for ``/things/mine``
    @routes.get("/things/mine")
    async def mine(limit: int = 10) -> dict[str, Any]:
        return {"mine": limit}

    @routes.get("/things/{thing_id}")
    async def thing(thing_id: uuid.UUID, request: Request) -> dict[str, Any]:
        if thing_id == uuid.UUID(int=0):
            raise Missing("THING_NOT_FOUND", "No such thing.")
        if thing_id == uuid.UUID(int=5):
            raise RuntimeError("a bug")
        taken = "fastapi_inner_astack" in request.scope  # FastAPI's own request scope, or not
        return {"id": thing_id, "at": WHEN, "by_fastapi": taken, "nested": {"n": [1, 2.5, None]}}

    @routes.get("/things/{thing_id}/typed", response_model=ThingOut)
    async def typed(thing_id: uuid.UUID) -> dict[str, Any]:
        return {"id": thing_id, "name": "drill", "created_at": WHEN, "secret": "not in the model"}

    @routes.get("/things/{thing_id}/announced", status_code=203)
    async def announced(thing_id: uuid.UUID) -> dict[str, Any]:
        changes.announce("catalog.ThingSeen", {"id": str(thing_id)})
        changes.note_revision(ORG, 7)
        return {"seen": True}

    @routes.get("/organizations/{org_id}/numbers/{n}")
    async def number(org_id: uuid.UUID, n: int) -> Response:
        return PlainTextResponse(f"{org_id}:{n * 2}")

    @routes.get("/organizations/{org_id}/names/{name}")
    async def name(org_id: str, name: str) -> list[str]:
        return [org_id, name]

    routes.mount("/internal/v1/static", app=PlainTextResponse("mounted"))

    # after a Mount: never answered ahead (what the Mount would take is not indexed)
    @routes.get("/internal/v1/after-a-mount/{thing_id}")
    async def after(thing_id: uuid.UUID) -> dict[str, str]:
        return {"after": str(thing_id)}

    return routes


def app(*, plain: bool) -> FastAPI:
    return create_app(service="test", routers=[router()], plain_routes=plain)


@pytest.fixture
async def clients() -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    headers = {INTERNAL_TOKEN_HEADER: TOKEN, "x-slipway-actor": ACTOR, "x-correlation-id": "c1"}
    pair = [
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app(plain=plain), raise_app_exceptions=False),
            base_url="http://test",
            headers=headers,
        )
        for plain in (True, False)
    ]
    yield pair[0], pair[1]
    for client in pair:
        await client.aclose()


UPPER = str(THING).upper()
PATHS = [
    f"/internal/v1/things/{THING}",
    f"/internal/v1/things/{UPPER}",
    f"/internal/v1/things/{THING.hex}",  # not the plain form: FastAPI's answer, whatever it is
    f"/internal/v1/things/{{{THING}}}",
    f"/internal/v1/things/urn:uuid:{THING}",
    "/internal/v1/things/not-an-id",
    "/internal/v1/things/",
    f"/internal/v1/things/{THING}/",
    "/internal/v1/things/mine",
    "/internal/v1/things/mine?limit=3",
    "/internal/v1/things/mine?limit=x",
    f"/internal/v1/things/{uuid.UUID(int=0)}",
    f"/internal/v1/things/{THING}/typed",
    f"/internal/v1/things/{THING}/announced",
    f"/internal/v1/organizations/{ORG}/numbers/21",
    f"/internal/v1/organizations/{ORG}/numbers/-4",
    f"/internal/v1/organizations/{ORG}/numbers/021",
    f"/internal/v1/organizations/{ORG}/numbers/+3",
    f"/internal/v1/organizations/{ORG}/numbers/99999999999999999999999",
    f"/internal/v1/organizations/{uuid.UUID(int=9)}/numbers/1",  # another tenant's: 404
    f"/internal/v1/organizations/{ORG}/names/caf%C3%A9",
    f"/internal/v1/organizations/{ORG}/names/a%2Fb",
    f"/internal/v1/after-a-mount/{THING}",
    "/internal/v1/static/x",
    "/healthz",
    "/nowhere",
]
COMPARED_HEADERS = ("content-type", changes.CHANGES_HEADER, changes.REVISION_HEADER)


@pytest.mark.parametrize("path", PATHS)
async def test_the_answer_is_the_routers_answer(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient], path: str
) -> None:
    ahead, router_only = clients
    got, want = await ahead.get(path), await router_only.get(path)
    assert (got.status_code, _body(got)) == (want.status_code, _body(want))
    assert [got.headers.get(h) for h in COMPARED_HEADERS] == [
        want.headers.get(h) for h in COMPARED_HEADERS
    ]


async def test_a_refusal_by_a_dependency_is_the_routers(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    for client in clients:
        refused = await client.get(
            f"/internal/v1/things/{THING}", headers={INTERNAL_TOKEN_HEADER: "wrong"}
        )
        assert (refused.status_code, refused.json()["error"]["code"]) == (403, "FORBIDDEN")


async def test_an_unexpected_error_is_the_500_of_the_app(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    for client in clients:
        failed = await client.get(f"/internal/v1/things/{uuid.UUID(int=5)}")
        assert (failed.status_code, failed.json()["error"]["code"]) == (500, "INTERNAL")


async def test_the_qualifying_routes_are_answered_ahead_of_the_router(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    ahead, router_only = clients
    assert (await ahead.get(f"/internal/v1/things/{THING}")).json()["by_fastapi"] is False
    assert (await router_only.get(f"/internal/v1/things/{THING}")).json()["by_fastapi"] is True
    assert (await ahead.get(f"/internal/v1/things/{THING.hex}")).json()["by_fastapi"] is True
    routes = router().routes
    # a route class whose wrapping is not known (ChangesRoute, here not given) never qualifies
    unknown = PlainRoutes(Response(), routes=lambda: routes, wraps={}, answers={}).index()
    assert all(
        found is None or found[0] is None
        for found in (unknown.match("GET", path.partition("?")[0]) for path in PATHS)
    )
    index = PlainRoutes(
        Response(), routes=lambda: routes, wraps={ChangesRoute: None}, answers={}
    ).index()
    answered = {
        path
        for path in PATHS
        if (found := index.match("GET", path.partition("?")[0])) and found[0] is not None
    }
    assert answered == {
        f"/internal/v1/things/{THING}",
        f"/internal/v1/things/{UPPER}",
        f"/internal/v1/things/{THING.hex}",  # matched; its id then sends it to FastAPI
        f"/internal/v1/things/{{{THING}}}",
        f"/internal/v1/things/urn:uuid:{THING}",
        "/internal/v1/things/not-an-id",
        f"/internal/v1/things/{uuid.UUID(int=0)}",
        f"/internal/v1/things/{THING}/typed",
        f"/internal/v1/things/{THING}/announced",
        *(p for p in PATHS if "/numbers/" in p or "/names/" in p),
    }, "the query route, the route after the Mount and unknown paths are FastAPI's"


def _body(response: httpx.Response) -> Any:
    if response.headers.get("content-type", "").startswith("application/json"):
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            body["error"].pop("trace_id", None)  # each request its own
        if isinstance(body, dict):
            body.pop("by_fastapi", None)  # what differs on purpose
        return body
    return response.text
