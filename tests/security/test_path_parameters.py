"""Path parameters cannot climb out of their resource (issue 10, flaw 1).

The gateway once formatted raw path parameters into internal URLs, and its HTTP client
collapsed ``..``: a devops token's ``DELETE …/api-tokens/%2E%2E`` deleted the organization.
These tests send hostile values in every path parameter of every public route (read from the
gateway's own OpenAPI document, so a new route is covered the day it is added), as every role,
over a raw HTTP connection (httpx would itself collapse ``..`` before sending), and require
404 or 422 — and that nothing changed.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx
import pytest

from slipway_libs.testing.platform import Platform
from slipway_libs.testing.public_api import (
    User,
    add_member,
    create_org,
    eventually,
    sign_up,
    token_auth,
)

pytestmark = pytest.mark.integration

ROLES = ("admin", "devops", "viewer", "billing")
HOSTILE = (
    "..",
    ".",
    "%2E%2E",
    "%2e%2e",
    "%2e%2e%2f",
    "%2E%2E%2F%2E%2E",
    "..%2f..%2f..",
    "%252e%252e",  # double-encoded
    "%252E%252E%252F",
    "%2e%2e%5c",  # backslash
    "not-a-uuid",
    "0",
    "%00",
    "{{id}}%2F..",  # a valid id, then a climb
    "{{id}}%3F",  # a valid id, then a query
    "{{{id}}}",  # braces: uuid.UUID takes them, the API does not
    "urn:uuid:{{id}}",
)
PARAMETER = re.compile(r"\{(\w+)\}")


@dataclass
class World:
    org: str
    owner: User
    headers: dict[str, dict[str, str]]  # principal name -> its authorization
    ids: dict[str, str]  # path parameter name -> a real id of that kind


async def _raw(base: str, method: str, target: str, headers: Mapping[str, str]) -> int:
    """One request with ``target`` sent exactly as written (no dot-segment removal)."""
    url = httpx.URL(base)
    async with httpcore.AsyncConnectionPool() as pool:
        response = await pool.request(
            method,
            httpcore.URL(
                scheme=b"http", host=url.host.encode(), port=url.port, target=target.encode()
            ),
            headers={**headers, "content-type": "application/json"},
            content=b"{}" if method in ("POST", "PUT", "PATCH") else b"",
        )
        return int(response.status)


@pytest.fixture(scope="module")
async def world(platform: Platform) -> World:
    async with httpx.AsyncClient(base_url=f"{platform.url('gateway')}/api/v1", timeout=30) as api:
        owner = await sign_up(api, "Owner")
        org = await create_org(api, owner)
        headers = {"owner": owner.auth}
        for role in ROLES:
            member = await sign_up(api, role.capitalize())
            await add_member(api, org, owner, member, role)
            headers[f"user:{role}"] = member.auth
            created = await api.post(
                f"/organizations/{org}/api-tokens",
                json={"name": f"t-{role}", "role": role},
                headers=owner.auth,
            )
            assert created.status_code == 201, created.text
            headers[f"token:{role}"] = token_auth(created.json()["token"])
        ids = await _resources(api, owner, org)
        await eventually(lambda: _readable(api, owner, ids), within_s=60)
        return World(org=org, owner=owner, headers=headers, ids=ids)


async def _resources(api: httpx.AsyncClient, owner: User, org: str) -> dict[str, str]:
    """A real id for every kind of path parameter, so that only the one under test is bad."""
    auth = owner.auth
    cluster = (await api.get(f"/organizations/{org}/clusters", headers=auth)).json()["items"][0]
    project = await api.post(f"/organizations/{org}/projects", json={"name": "P"}, headers=auth)
    environment = await api.post(
        f"/projects/{project.json()['id']}/environments",
        json={"name": "main", "mode": "development", "cluster_id": cluster["id"]},
        headers=auth,
    )
    env_id = environment.json()["id"]
    service = await api.post(
        f"/environments/{env_id}/services",
        json={"name": "web", "kind": "container", "image": {"name": "busybox", "tag": "1"}},
        headers=auth,
    )
    assert service.status_code == 201, service.text
    tokens = (await api.get(f"/organizations/{org}/api-tokens", headers=auth)).json()["items"]
    return {
        "org": org,
        "cluster": cluster["id"],
        "project": project.json()["id"],
        "environment": env_id,
        "service": service.json()["id"],
        "token": tokens[0]["id"],
        "user": owner.id,
        # kinds that need no real row: the parameter under test is never a valid id anyway
        "stage": str(uuid.uuid4()),
        "variable": str(uuid.uuid4()),
        "deployment": str(uuid.uuid4()),
        "invitation": str(uuid.uuid4()),
        "role": str(uuid.uuid4()),
        "webhook": str(uuid.uuid4()),
        "git_webhook": str(uuid.uuid4()),
        "git_credential": str(uuid.uuid4()),
        "delivery": str(uuid.uuid4()),
    }


async def _readable(api: httpx.AsyncClient, owner: User, ids: dict[str, str]) -> bool:
    answer = await api.get(f"/services/{ids['service']}", headers=owner.auth)
    return answer.status_code == 200


async def _state(api: httpx.AsyncClient, world: World) -> dict[str, Any]:
    """Everything a climbing request could have changed, as the owner sees it."""
    org, ids, auth = world.org, world.ids, world.owner.auth
    paths = [
        f"/organizations/{org}",
        f"/organizations/{org}/members",
        f"/organizations/{org}/api-tokens",
        f"/organizations/{org}/roles",
        f"/organizations/{org}/invitations",
        f"/organizations/{org}/clusters",
        f"/organizations/{org}/projects",
        f"/projects/{ids['project']}/environments",
        f"/environments/{ids['environment']}/services",
        f"/environments/{ids['environment']}/stages",
        f"/services/{ids['service']}",
    ]
    state: dict[str, Any] = {}
    for path in paths:
        answer = await api.get(path, headers=auth)
        assert answer.status_code == 200, (path, answer.text)
        body = answer.json()
        for item in body.get("items", []) if isinstance(body, dict) else []:
            item.pop("last_used_at", None)  # the tokens under test are used, by design
        body.pop("updated_at", None) if isinstance(body, dict) else None
        state[path] = body
    return state


def _targets(openapi: dict[str, Any], ids: dict[str, str]) -> list[tuple[str, str, str]]:
    """(method, raw target, parameter) for every hostile value of every path parameter."""
    cases = []
    for path, operations in openapi["paths"].items():
        names = PARAMETER.findall(path)
        for method in operations:
            for name in names:
                for value in HOSTILE:
                    bad = value.replace("{{id}}", ids[name]).replace("{{", "{").replace("}}", "}")
                    filled = {n: (bad if n == name else ids[n]) for n in names}
                    target = PARAMETER.sub(lambda m, f=filled: f[m.group(1)], path)
                    cases.append((method.upper(), target, name))
    return cases


async def test_hostile_path_parameters_answer_404_or_422_and_change_nothing(
    platform: Platform, world: World
) -> None:
    base = platform.url("gateway")
    async with httpx.AsyncClient(base_url=f"{base}/api/v1", timeout=30) as api:
        openapi = (await api.get("/openapi.json")).json()
        before = await _state(api, world)
        cases = _targets(openapi, world.ids)
        assert len({c[2] for c in cases}) >= 12, "every kind of path parameter is exercised"
        principals = {**world.headers, "anonymous": {}}
        gate = asyncio.Semaphore(16)

        async def one(who: str, method: str, target: str) -> tuple[str, str, str, int]:
            async with gate:
                status = await _raw(base, method, target, principals[who])
                return who, method, target, status

        answers = await asyncio.gather(*(one(who, m, t) for who in principals for m, t, _ in cases))
        wrong = [a for a in answers if a[3] not in (404, 422)]
        assert not wrong, f"{len(wrong)} of {len(answers)} answers were not 404/422: {wrong[:20]}"
        assert await _state(api, world) == before


async def test_the_reported_climbs_are_refused(platform: Platform, world: World) -> None:
    """The three requests of the report, each of which reached the organization."""
    base, org = platform.url("gateway"), world.org
    climbs = [
        ("token:devops", "DELETE", f"/api/v1/organizations/{org}/api-tokens/%2E%2E"),
        ("user:admin", "DELETE", f"/api/v1/organizations/{org}/members/.."),
        ("user:admin", "PATCH", f"/api/v1/organizations/{org}/members/.."),
        ("user:admin", "DELETE", f"/api/v1/organizations/{org}/invitations/.."),
        ("user:admin", "DELETE", f"/api/v1/organizations/{org}/roles/%2e%2e"),
        ("user:viewer", "GET", f"/api/v1/organizations/{org}/roles/%2E%2E"),
    ]
    for who, method, target in climbs:
        status = await _raw(base, method, target, world.headers[who])
        assert status == 422, (who, method, target, status)
    async with httpx.AsyncClient(base_url=f"{base}/api/v1", timeout=30) as api:
        still = await api.get(f"/organizations/{org}", headers=world.owner.auth)
        assert still.status_code == 200, still.text
        error = await api.get(f"/organizations/{org}/roles/not-an-id", headers=world.owner.auth)
        assert error.json()["error"]["code"] == "INVALID_ID"
        assert error.json()["error"]["details"]["parameter"] == "role"
