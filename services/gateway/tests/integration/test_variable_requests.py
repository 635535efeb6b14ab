"""A variable request names its parent in the body (or the query): one that lacks it, or names
it wrongly, answers 422 naming the fields before any lookup (it answered 404
``PARENT_NOT_FOUND`` for a parent nobody had named)."""

from __future__ import annotations

import uuid

import pytest

from slipway_libs.testing.public_api import sign_up


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"scope": "missing", "parent_id": "missing"}),
        ([], {"scope": "missing", "parent_id": "missing"}),
        ({"scope": "service"}, {"parent_id": "missing"}),
        ({"scope": "galaxy", "parent_id": str(uuid.uuid4())}, {"scope": "enum"}),
        ({"scope": "service", "parent_id": "nope"}, {"parent_id": "uuid_parsing"}),
        ({"scope": "service", "parent_id": 12}, {"parent_id": "uuid_parsing"}),
    ],
)
async def test_a_create_without_its_parent_names_the_missing_fields(api, body, fields) -> None:
    ada = await sign_up(api)
    response = await api.post("/variables", json=body, headers=ada.auth)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert {d["path"]: d["type"] for d in error["details"]} == fields


async def test_a_list_without_its_parent_names_the_query_fields(api) -> None:
    ada = await sign_up(api)
    response = await api.get("/variables", headers=ada.auth)
    assert response.status_code == 422, response.text
    paths = {d["path"] for d in response.json()["error"]["details"]}
    assert paths == {"query.scope", "query.parent_id"}


async def test_a_well_formed_parent_nobody_may_see_is_still_not_found(api) -> None:
    ada = await sign_up(api)
    body = {"scope": "service", "parent_id": str(uuid.uuid4()), "key": "K", "value": "v"}
    response = await api.post("/variables", json=body, headers=ada.auth)
    assert response.status_code == 404, response.text
