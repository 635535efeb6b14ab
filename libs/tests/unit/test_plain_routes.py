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
from urllib.parse import unquote

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.responses import PlainTextResponse, Response

from slipway_libs import changes
from slipway_libs.actor import INTERNAL_TOKEN_HEADER, internal_guard, token_digest
from slipway_libs.errors import BusinessError, Missing
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


class Gone(Exception):
    """An error the app has a handler of its own for (added after create_app)."""


async def audited(request: Request) -> None:
    """A router dependency a test overrides (``app.dependency_overrides``)."""


def router() -> APIRouter:
    routes = APIRouter(
        prefix="/internal/v1",
        dependencies=[
            Depends(internal_guard({"lead": token_digest(TOKEN)})),
            Depends(tenant_scope(required=False)),
            Depends(audited),
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
        if thing_id == uuid.UUID(int=6):
            raise RequestValidationError([{"loc": ("path", "thing_id"), "msg": "no", "type": "x"}])
        if thing_id == uuid.UUID(int=7):
            raise Gone()
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

    @routes.get("/things/{thing_id}/gone", status_code=204)
    async def gone(thing_id: uuid.UUID) -> None:
        return None

    # audited twice (FastAPI runs it once): FastAPI's
    @routes.get("/twice/{thing_id}", dependencies=[Depends(audited)])
    async def twice(thing_id: uuid.UUID) -> dict[str, str]:
        return {"twice": str(thing_id)}

    routes.mount("/internal/v1/static", app=PlainTextResponse("mounted"))

    # after a Mount: never answered ahead (what the Mount would take is not indexed)
    @routes.get("/internal/v1/after-a-mount/{thing_id}")
    async def after(thing_id: uuid.UUID) -> dict[str, str]:
        return {"after": str(thing_id)}

    return routes


def app(*, plain: bool) -> FastAPI:
    built = create_app(service="test", routers=[router()], plain_routes=plain)

    async def on_gone(_: Request, exc: Gone) -> Response:
        return PlainTextResponse("gone", status_code=410)

    built.add_exception_handler(Gone, on_gone)
    return built


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
    f"/internal/v1/things/{uuid.UUID(int=6)}",  # 422, raised by the endpoint
    f"/internal/v1/things/{uuid.UUID(int=7)}",  # the app's own handler: 410
    f"/internal/v1/things/{THING}/gone",  # 204: no body, no content-length
    f"/internal/v1/twice/{THING}",
    "/internal/v1/things/mine%0A",  # Starlette picks /things/mine
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
    assert ("content-length" in got.headers) == ("content-length" in want.headers)
    if "content-length" in got.headers:  # what it says is what came (a 204's: nothing)
        assert int(got.headers["content-length"]) == len(got.content)
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


async def test_dependency_overrides_are_applied_as_fastapi_applies_them() -> None:
    """While a test overrides a dependency, FastAPI answers every request (it applies them)."""
    built = app(plain=True)

    async def refuse(request: Request) -> None:
        raise BusinessError("Refused by the override.", code="OVERRIDDEN", status_code=403)

    built.dependency_overrides[audited] = refuse
    headers = {INTERNAL_TOKEN_HEADER: TOKEN, "x-slipway-actor": ACTOR}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=built), base_url="http://test", headers=headers
    ) as client:
        refused = await client.get(f"/internal/v1/things/{THING}")
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "OVERRIDDEN")


async def test_the_qualifying_routes_are_answered_ahead_of_the_router(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    ahead, router_only = clients
    assert (await ahead.get(f"/internal/v1/things/{THING}")).json()["by_fastapi"] is False
    assert (await router_only.get(f"/internal/v1/things/{THING}")).json()["by_fastapi"] is True
    assert (await ahead.get(f"/internal/v1/things/{THING.hex}")).json()["by_fastapi"] is True
    routes = router().routes
    # a route class whose wrapping is not known (ChangesRoute, here not given) never qualifies
    unknown = PlainRoutes(
        Response(), routes=lambda: routes, wraps={}, handlers={}, overrides={}
    ).index()
    assert all(
        found is None or found[0] is None
        for found in (unknown.match("GET", unquote(path.partition("?")[0])) for path in PATHS)
    )
    index = PlainRoutes(
        Response(), routes=lambda: routes, wraps={ChangesRoute: None}, handlers={}, overrides={}
    ).index()
    answered = {
        path
        for path in PATHS
        # the path as the server hands it on (scope["path"]: percent-decoded, no query)
        if (found := index.match("GET", unquote(path.partition("?")[0]))) and found[0] is not None
    }
    assert answered == {
        f"/internal/v1/things/{THING}",
        f"/internal/v1/things/{UPPER}",
        f"/internal/v1/things/{THING.hex}",  # matched; its id then sends it to FastAPI
        f"/internal/v1/things/{{{THING}}}",
        f"/internal/v1/things/urn:uuid:{THING}",
        "/internal/v1/things/not-an-id",
        f"/internal/v1/things/{uuid.UUID(int=0)}",
        f"/internal/v1/things/{uuid.UUID(int=6)}",
        f"/internal/v1/things/{uuid.UUID(int=7)}",
        f"/internal/v1/things/{THING}/gone",
        f"/internal/v1/things/{THING}/typed",
        f"/internal/v1/things/{THING}/announced",
        *(p for p in PATHS if "/numbers/" in p or ("/names/" in p and "%2F" not in p)),
    }, "the query route, a dependency twice, after the Mount, unknown paths: FastAPI's"


def _body(response: httpx.Response) -> Any:
    if not response.content:
        return None
    if response.headers.get("content-type", "").startswith("application/json"):
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            body["error"].pop("trace_id", None)  # each request its own
        if isinstance(body, dict):
            body.pop("by_fastapi", None)  # what differs on purpose
        return body
    return response.text
