"""The causal token of read-your-writes across services: ``<project id>:<n>[,…]``."""

from __future__ import annotations

import uuid

import httpx
from fastapi import APIRouter

from slipway_libs import changes
from slipway_libs.errors import Clash
from slipway_libs.http import ChangesRoute, create_app


def test_a_token_round_trips_and_keeps_the_newest_revision_of_each_project() -> None:
    shop, blog = uuid.uuid4(), uuid.uuid4()
    token = changes.format_revisions({shop: 3, blog: 12})
    assert changes.parse_revisions(token) == {shop: 3, blog: 12}
    assert changes.parse_revisions(f"{shop}:3, {shop}:9") == {shop: 9}


def test_what_does_not_parse_is_ignored_and_a_token_is_bounded() -> None:
    shop = uuid.uuid4()
    assert changes.parse_revisions(None) == {}
    assert changes.parse_revisions(f"nope,{shop}:x,{shop}:-1,{shop}:0,{shop}:{2**63},:4") == {}
    many = ",".join(f"{uuid.uuid4()}:1" for _ in range(100))
    assert len(changes.parse_revisions(many)) == changes.MAX_REVISIONS


async def test_an_answer_carries_the_revisions_its_writes_reached_and_an_error_none() -> None:
    shop = uuid.uuid4()
    router = APIRouter(route_class=ChangesRoute)

    @router.post("/write")
    async def write() -> dict[str, str]:
        changes.note_revision(shop, 4)
        changes.note_revision(shop, 5)
        return {}

    @router.post("/fail")
    async def fail() -> None:
        changes.note_revision(shop, 6)  # rolled back with the failing transaction
        raise Clash("NOPE", "refused")

    app = create_app(service="t", routers=[router])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        written = await client.post("/write")
        failed = await client.post("/fail")
    assert written.headers[changes.REVISION_HEADER] == f"{shop}:5"
    assert failed.status_code == 409 and changes.REVISION_HEADER not in failed.headers
    changes.note_revision(shop, 7)  # outside a request: nothing to answer, nothing breaks
