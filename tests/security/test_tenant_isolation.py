"""Tenant isolation holds inside the services too (issue 10, item 8).

The gateway resolves the organization of every request and authorizes it; these tests play a
gateway that got it wrong. They call the services' internal APIs directly, with a valid
internal credential and an actor of organization B, naming organization A's resources: every
read and write answers 404 and changes nothing, because each service binds the actor's
organization for the request and its tables' row-level policies hide the other tenant's rows.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from slipway_libs.actor import ACTOR_HEADER, INTERNAL_TOKEN_HEADER, Actor
from slipway_libs.testing.platform import Platform
from slipway_libs.testing.public_api import User, create_org, eventually, sign_up

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def platform(platform_factory) -> Platform:
    # the deployer waits for the catalog's events about an unknown environment: not long here
    return await platform_factory(
        ["identity", "catalog", "deployer", "gateway"],
        extra_env={"SLIPWAY_DEPLOYER_CATALOG_WAIT_S": "0.5"},
    )


def _internal(platform: Platform, who: User, org: str | None) -> dict[str, str]:
    actor = Actor(
        type="user",
        id=who.id,
        user_id=uuid.UUID(who.id),
        organization_role="owner",
        organization_id=uuid.UUID(org) if org else None,
    )
    return {
        INTERNAL_TOKEN_HEADER: platform.env["SLIPWAY_INTERNAL_TOKEN"],
        ACTOR_HEADER: actor.header(),
    }


@pytest.fixture(scope="module")
async def tenants(platform: Platform) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=f"{platform.url('gateway')}/api/v1", timeout=30) as api:
        alice, bob = await sign_up(api, "Alice"), await sign_up(api, "Bob")
        org_a, org_b = await create_org(api, alice, "A"), await create_org(api, bob, "B")
        auth = alice.auth
        cluster = (await api.get(f"/organizations/{org_a}/clusters", headers=auth)).json()
        project = await api.post(
            f"/organizations/{org_a}/projects", json={"name": "P"}, headers=auth
        )
        env = await api.post(
            f"/projects/{project.json()['id']}/environments",
            json={"name": "main", "mode": "development", "cluster_id": cluster["items"][0]["id"]},
            headers=auth,
        )
        env_id = env.json()["id"]
        service = await api.post(
            f"/environments/{env_id}/services",
            json={"name": "web", "kind": "container", "image": {"name": "busybox", "tag": "1"}},
            headers=auth,
        )
        variable = await api.post(
            "/variables",
            json={"scope": "environment", "parent_id": env_id, "key": "K", "value": "v"},
            headers=auth,
        )
        token = await api.post(
            f"/organizations/{org_a}/api-tokens",
            json={"name": "ci", "role": "viewer"},
            headers=auth,
        )
        for answer in (project, env, service, variable, token):
            assert answer.status_code == 201, answer.text
        ids = {
            "org": org_a,
            "cluster": cluster["items"][0]["id"],
            "project": project.json()["id"],
            "environment": env_id,
            "service": service.json()["id"],
            "variable": variable.json()["id"],
            "token": token.json()["id"],
        }

        async def deployer_knows() -> bool:
            status = await api.get(f"/environments/{env_id}/status", headers=auth)
            return status.status_code == 200

        await eventually(deployer_knows, within_s=60)
        return {"alice": alice, "bob": bob, "org_a": org_a, "org_b": org_b, "ids": ids}


def _requests(ids: dict[str, str]) -> list[tuple[str, str, str, dict[str, Any] | None]]:
    """(service, method, internal path, body) naming organization A's resources."""
    org, env, svc = ids["org"], ids["environment"], ids["service"]
    return [
        ("catalog", "GET", f"/clusters/{ids['cluster']}", None),
        ("catalog", "PATCH", f"/clusters/{ids['cluster']}", {"name": "stolen"}),
        ("catalog", "GET", f"/organizations/{org}/projects", None),
        ("catalog", "POST", f"/organizations/{org}/projects", {"name": "planted"}),
        ("catalog", "GET", f"/projects/{ids['project']}", None),
        ("catalog", "PATCH", f"/projects/{ids['project']}", {"name": "stolen"}),
        ("catalog", "DELETE", f"/projects/{ids['project']}", None),
        ("catalog", "GET", f"/environments/{env}", None),
        ("catalog", "DELETE", f"/environments/{env}", None),
        ("catalog", "GET", f"/environments/{env}/services", None),
        ("catalog", "POST", f"/environments/{env}/stages", {"name": "planted"}),
        ("catalog", "GET", f"/services/{svc}", None),
        ("catalog", "DELETE", f"/services/{svc}", None),
        ("catalog", "GET", f"/services/{svc}/variables/resolved", None),
        ("catalog", "GET", f"/variables/{ids['variable']}", None),
        ("catalog", "PATCH", f"/variables/{ids['variable']}", {"value": "stolen"}),
        ("catalog", "DELETE", f"/variables/{ids['variable']}", None),
        ("deployer", "GET", f"/environments/{env}/status", None),
        ("deployer", "GET", f"/environments/{env}/deployments", None),
        ("deployer", "POST", f"/environments/{env}/deploy", None),
        ("deployer", "POST", f"/services/{svc}/stop", None),
        ("identity", "GET", f"/organizations/{org}", None),
        ("identity", "PATCH", f"/organizations/{org}", {"name": "stolen"}),
        ("identity", "GET", f"/organizations/{org}/members", None),
        ("identity", "DELETE", f"/organizations/{org}/api-tokens/{ids['token']}", None),
        ("identity", "DELETE", f"/organizations/{org}", None),
    ]


async def _call(
    platform: Platform,
    service: str,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    headers: dict[str, str],
) -> httpx.Response:
    async with httpx.AsyncClient(base_url=platform.url(service), timeout=30) as client:
        return await client.request(method, f"/internal/v1{path}", json=body, headers=headers)


async def test_another_organizations_actor_finds_nothing(
    platform: Platform, tenants: dict[str, Any]
) -> None:
    bob_in_b = _internal(platform, tenants["bob"], tenants["org_b"])
    wrong = []
    for service, method, path, body in _requests(tenants["ids"]):
        answer = await _call(platform, service, method, path, body, bob_in_b)
        if answer.status_code != 404:
            wrong.append((service, method, path, answer.status_code, answer.text[:200]))
    assert not wrong, wrong


async def test_nothing_changed_and_the_owner_still_reaches_everything(  # runs after the above
    platform: Platform, tenants: dict[str, Any]
) -> None:
    alice_in_a = _internal(platform, tenants["alice"], tenants["org_a"])
    ids = tenants["ids"]
    for service, path in (
        ("catalog", f"/clusters/{ids['cluster']}"),
        ("catalog", f"/projects/{ids['project']}"),
        ("catalog", f"/environments/{ids['environment']}"),
        ("catalog", f"/services/{ids['service']}"),
        ("catalog", f"/variables/{ids['variable']}"),
        ("deployer", f"/environments/{ids['environment']}/status"),
        ("identity", f"/organizations/{ids['org']}"),
    ):
        answer = await _call(platform, service, "GET", path, None, alice_in_a)
        assert answer.status_code == 200, (path, answer.text)
        body = answer.json()
        assert body.get("name") != "stolen" and body.get("value") != "stolen", body
    projects = await _call(
        platform, "catalog", "GET", f"/organizations/{ids['org']}/projects", None, alice_in_a
    )
    assert [p["name"] for p in projects.json()["items"]] == ["P"]
    tokens = await _call(
        platform, "identity", "GET", f"/organizations/{ids['org']}/api-tokens", None, alice_in_a
    )
    assert ids["token"] in [t["id"] for t in tokens.json()["items"]]


async def test_a_users_request_without_an_organization_is_refused(
    platform: Platform, tenants: dict[str, Any]
) -> None:
    nowhere = _internal(platform, tenants["bob"], None)
    project = tenants["ids"]["project"]
    answer = await _call(platform, "catalog", "GET", f"/projects/{project}", None, nowhere)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "ORGANIZATION_REQUIRED"
