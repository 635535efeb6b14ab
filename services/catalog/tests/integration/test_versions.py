"""Concurrent edits and safe retries in the catalog, against the real PostgreSQL: every resource
answers its version as ETag, a write on a stale If-Match answers 412 and changes nothing, two
writers racing on one version get one success and one 412, a keyed create runs once."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from services.catalog.tests.integration.test_catalog_api import APP, org_with_env

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Resource:
    path: str  # where it is written
    change: dict[str, Any]
    read: str  # where it is read: itself, or (a stage) its environment's list
    put: bool = False

    async def etag(self, api: httpx.AsyncClient) -> str:
        answer = await api.get(self.read)
        assert answer.status_code == 200, answer.text
        if self.read == self.path:
            body = answer.json()
            assert answer.headers["etag"] == f'"{body["resource_version"]}"'
        else:
            body = next(i for i in answer.json()["items"] if self.path.endswith(i["id"]))
        return f'"{body["resource_version"]}"'

    async def write(self, api: httpx.AsyncClient, body: dict[str, Any], if_match: str):  # type: ignore[no-untyped-def]
        method = api.put if self.put else api.patch
        return await method(self.path, json=body, headers={"If-Match": if_match})


async def _resources(api: httpx.AsyncClient) -> dict[str, Resource]:
    _, project, env, _ = await org_with_env(api)
    service = (await api.post(f"/environments/{env}/services", json=APP)).json()["id"]
    stage = (await api.post(f"/environments/{env}/stages", json={"name": "late"})).json()["id"]
    variable = await api.post(
        "/variables", json={"scope": "environment", "parent_id": env, "key": "A", "value": "1"}
    )
    variable_path = f"/variables/{variable.json()['id']}"
    rule = f"/environments/{env}/deployment-rule"
    return {
        "project": Resource(f"/projects/{project}", {"description": "x"}, f"/projects/{project}"),
        "environment": Resource(
            f"/environments/{env}", {"name": "renamed"}, f"/environments/{env}"
        ),
        "service": Resource(f"/services/{service}", {"description": "x"}, f"/services/{service}"),
        "stage": Resource(f"/stages/{stage}", {"name": "later"}, f"/environments/{env}/stages"),
        "variable": Resource(variable_path, {"value": "2"}, variable_path),
        "rule": Resource(
            rule, {"auto_stop": True, "weekdays": ["mon"], "stop_time": "19:00"}, rule, put=True
        ),
    }


@pytest.mark.parametrize("kind", ["project", "environment", "service", "stage", "variable", "rule"])
async def test_a_stale_if_match_answers_412_and_changes_nothing(api, kind: str) -> None:
    resource = (await _resources(api))[kind]
    seen = await resource.etag(api)

    other_user = await resource.write(api, resource.change, seen)
    assert other_user.status_code == 200, other_user.text
    newer = other_user.headers["etag"]
    assert newer != seen and newer == await resource.etag(api)

    stale = await resource.write(api, resource.change, seen)
    assert stale.status_code == 412, stale.text
    assert stale.json()["error"]["code"] == "PRECONDITION_FAILED"
    assert stale.json()["error"]["details"]["current_version"] == int(newer.strip('"'))
    assert stale.headers["etag"] == newer
    assert await resource.etag(api) == newer  # the stale write took no version: nothing changed


async def test_two_writers_on_one_version_one_wins_the_other_gets_412(api) -> None:
    project = (await _resources(api))["project"]
    seen = await project.etag(api)
    answers = await asyncio.gather(
        *(project.write(api, {"description": who}, seen) for who in ("a", "b"))
    )
    assert sorted(a.status_code for a in answers) == [200, 412]
    winner = next(a for a in answers if a.status_code == 200)
    survived = (await api.get(project.path)).json()
    assert survived["description"] == winner.json()["description"]


async def test_a_missing_resource_is_404_whatever_the_precondition(api) -> None:
    await org_with_env(api)
    missing = "/projects/00000000-0000-4000-8000-000000000000"
    answer = await api.patch(missing, json={"name": "x"}, headers={"If-Match": '"1"'})
    assert answer.status_code == 404


async def test_keyed_creates_and_clones_run_once(api) -> None:
    _, project, env, _ = await org_with_env(api)
    key = {"Idempotency-Key": "svc-1"}
    made = [await api.post(f"/environments/{env}/services", json=APP, headers=key) for _ in "ab"]
    assert [m.status_code for m in made] == [201, 201] and made[0].json() == made[1].json()
    assert made[1].headers["idempotent-replayed"] == "true"
    assert made[1].headers["etag"] == made[0].headers["etag"]
    services = (await api.get(f"/environments/{env}/services")).json()["items"]
    assert len(services) == 1

    clone = {"Idempotency-Key": "clone-1"}
    copies = [
        await api.post(f"/environments/{env}/clone", json={"name": "copy"}, headers=clone)
        for _ in "ab"
    ]
    assert [c.status_code for c in copies] == [201, 201] and copies[0].json() == copies[1].json()
    environments = (await api.get(f"/projects/{project}/environments")).json()["items"]
    assert sorted(e["name"] for e in environments) == ["copy", "staging"]
