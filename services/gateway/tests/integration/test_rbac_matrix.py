"""The role-by-route matrix, generated from the route table and the permission table.

For every route of the public table and every kind of principal (each built-in role as a member
and as an API token, a custom role, a stranger, another organization's token), the gateway's
answer must match the table: allowed (the request reaches the service: any answer but 401/403
or a hidden organization), forbidden (403 ``FORBIDDEN``), or hidden (404
``ORGANIZATION_NOT_FOUND``, for every cross-organization attempt). Requests are built not to
change anything: empty bodies the services refuse (422), unknown sub-resource ids (404) — except
the destructive route, which is checked on an organization created for that one cell.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import httpx
import pytest

from slipway_gateway.api.table import ROUTES, RouteSpec
from slipway_gateway.domain.policy import BUILTIN_MATRIX, BUILTIN_ROLES, Action
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

# what a custom role may do at the organization level (it holds no project or cluster here)
CUSTOM_ALLOWED = {Action.ORG_READ, Action.MEMBERS_READ, Action.ROLES_READ}
MATRIX_ROUTES = [r for r in ROUTES if r.access != "public" and r.path != "/auth/logout"]


@dataclass(frozen=True)
class Principal:
    name: str
    headers: dict[str, str]
    kind: str  # "user" | "token"
    role: str | None  # built-in role in the org, "custom", or None for outsiders


PRINCIPALS = (
    [f"user:{r}" for r in BUILTIN_ROLES]
    + [f"token:{r}" for r in BUILTIN_ROLES]
    + ["user:custom", "token:custom", "user:stranger", "token:other-org"]
)


@pytest.fixture(scope="module")
async def platform(platform_factory) -> Platform:
    return await platform_factory(["identity", "catalog", "deployer", "gateway"])


APP = {"name": "web", "kind": "application", "git": {"url": "https://example.com/a/b.git"}}


async def _catalog_fixtures(api: httpx.AsyncClient, owner: User, org: str) -> dict[str, str]:
    """One of each catalog resource, for the cells to point at."""
    clusters = (await api.get(f"/organizations/{org}/clusters", headers=owner.auth)).json()
    cluster = clusters["items"][0]["id"]
    project = (
        await api.post(f"/organizations/{org}/projects", json={"name": "P"}, headers=owner.auth)
    ).json()["id"]
    ids = {"cluster": cluster, "project": project}
    ids.update(await _fresh_in_project(api, owner, project, cluster))
    deployed = await api.post(f"/environments/{ids['environment']}/deploy", headers=owner.auth)
    assert deployed.status_code == 202, deployed.text
    ids["deployment"] = deployed.json()["request_id"]
    return ids


async def _fresh_in_project(
    api: httpx.AsyncClient, owner: User, project: str, cluster: str
) -> dict[str, str]:
    name = uuid.uuid4().hex[:8]
    env = (
        await api.post(
            f"/projects/{project}/environments",
            headers=owner.auth,
            json={"name": name, "mode": "staging", "cluster_id": cluster},
        )
    ).json()
    service = (
        await api.post(f"/environments/{env['id']}/services", headers=owner.auth, json=APP)
    ).json()
    stage = (
        await api.post(
            f"/environments/{env['id']}/stages", headers=owner.auth, json={"name": "extra"}
        )
    ).json()
    variable = (
        await api.post(
            "/variables",
            headers=owner.auth,
            json={"scope": "environment", "parent_id": env["id"], "key": "K", "value": "v"},
        )
    ).json()
    return {
        "environment": env["id"],
        "service": service["id"],
        "stage": stage["id"],
        "variable": variable["id"],
    }


async def _fresh(api: httpx.AsyncClient, cast: dict[str, object], target: str) -> dict[str, str]:
    """A new resource of ``target``'s kind for a destructive cell (deleted by it, or not)."""
    owner: User = cast["owner"]  # type: ignore[assignment]
    org, ids = str(cast["org"]), dict(cast["ids"])  # type: ignore[call-overload]
    if target == "cluster":
        made = await api.post(
            f"/organizations/{org}/clusters",
            headers=owner.auth,
            json={"name": uuid.uuid4().hex[:10], "api_url": "https://127.0.0.1:9", "token": "t"},
        )
        ids["cluster"] = made.json()["id"]
    elif target == "project":
        made = await api.post(
            f"/organizations/{org}/projects",
            headers=owner.auth,
            json={"name": uuid.uuid4().hex[:10]},
        )
        ids["project"] = made.json()["id"]
    else:
        ids.update(await _fresh_in_project(api, owner, ids["project"], ids["cluster"]))
    return ids


@pytest.fixture(scope="module")
async def cast(platform) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=f"{platform.url('gateway')}/api/v1", timeout=10) as api:
        owner = await sign_up(api, "Owner")
        org = await create_org(api, owner)
        custom = await api.post(
            f"/organizations/{org}/roles",
            json={"name": "Auditor", "projects": [], "clusters": []},
            headers=owner.auth,
        )
        assert custom.status_code == 201, custom.text
        principals: dict[str, Principal] = {
            "user:owner": Principal("user:owner", owner.auth, "user", "owner")
        }
        for role in [*BUILTIN_ROLES[1:], "custom"]:
            member = await sign_up(api, role.capitalize())
            await add_member(
                api, org, owner, member, custom.json()["id"] if role == "custom" else role
            )
            principals[f"user:{role}"] = Principal(f"user:{role}", member.auth, "user", role)
        for role in [*BUILTIN_ROLES, "custom"]:
            made = await api.post(
                f"/organizations/{org}/api-tokens",
                headers=owner.auth,
                json={"name": role, "role": custom.json()["id"] if role == "custom" else role},
            )
            assert made.status_code == 201, made.text
            principals[f"token:{role}"] = Principal(
                f"token:{role}", token_auth(made.json()["token"]), "token", role
            )
        stranger = await sign_up(api, "Stranger")
        elsewhere = await create_org(api, stranger, "Elsewhere")
        foreign = await api.post(
            f"/organizations/{elsewhere}/api-tokens",
            headers=stranger.auth,
            json={"name": "x", "role": "owner"},
        )
        principals["user:stranger"] = Principal("user:stranger", stranger.auth, "user", None)
        principals["token:other-org"] = Principal(
            "token:other-org", token_auth(foreign.json()["token"]), "token", None
        )
        for p in principals.values():  # every credential is known to the gateway
            await eventually(lambda p=p: _known(api, p))
        ids = await _catalog_fixtures(api, owner, org)
        return {"org": org, "owner": owner, "principals": principals, "ids": ids}


async def _known(api: httpx.AsyncClient, principal: Principal) -> bool:
    return (await api.get("/organizations", headers=principal.headers)).status_code == 200


def expected(route: RouteSpec, principal: Principal) -> str:
    if route.access == "user":
        if principal.kind == "token" and (route.method, route.path) != ("GET", "/organizations"):
            return "users_only"
        return "allowed"
    assert route.action is not None, f"{route.method} {route.path} declares no action"
    if principal.role is None:
        return "hidden"
    if principal.role == "custom":
        return "allowed" if route.action in CUSTOM_ALLOWED else "forbidden"
    return "allowed" if principal.role in BUILTIN_MATRIX[route.action] else "forbidden"


def _path(route: RouteSpec, org: str, ids: dict[str, str]) -> str:
    unknown = {name: str(uuid.uuid4()) for name in ("user", "role", "token", "invitation")}
    path = "/api/v1" + route.path.format(org=org, **unknown, **ids)
    if route.target == "variable_query":
        path += f"?scope=environment&parent_id={ids['environment']}"
    return path


def _body(route: RouteSpec, ids: dict[str, str]) -> dict[str, str] | None:
    """Bodies the services refuse (422) once authorized, so that no cell changes anything."""
    if route.target == "variable_body":
        return {"scope": "environment", "parent_id": ids["environment"]}
    return {} if route.method in ("POST", "PATCH", "PUT") else None


HIDDEN = {
    "ORGANIZATION_NOT_FOUND",
    "CLUSTER_NOT_FOUND",
    "PROJECT_NOT_FOUND",
    "ENVIRONMENT_NOT_FOUND",
    "SERVICE_NOT_FOUND",
    "STAGE_NOT_FOUND",
    "VARIABLE_NOT_FOUND",
    "PARENT_NOT_FOUND",
    "DEPLOYMENT_NOT_FOUND",
}


@pytest.mark.parametrize("principal_name", PRINCIPALS)
@pytest.mark.parametrize("route", MATRIX_ROUTES, ids=lambda r: f"{r.method} {r.path}")
async def test_matrix_cell(platform, cast, route: RouteSpec, principal_name: str) -> None:
    principal: Principal = cast["principals"][principal_name]  # type: ignore[index]
    want = expected(route, principal)
    async with httpx.AsyncClient(base_url=platform.url("gateway"), timeout=10) as client:
        org = str(cast["org"])
        ids: dict[str, str] = cast["ids"]  # type: ignore[assignment]
        if route.destructive and want == "allowed":
            org = await _throwaway_org(client, cast, principal)
            principal = cast["throwaway"]  # type: ignore[index,assignment]
        if route.upstream == "catalog" and route.method == "DELETE":
            async with httpx.AsyncClient(
                base_url=f"{platform.url('gateway')}/api/v1", timeout=10
            ) as api:
                ids = await _fresh(api, cast, route.target)
        response = await client.request(
            route.method, _path(route, org, ids), json=_body(route, ids), headers=principal.headers
        )
    code = response.json().get("error", {}).get("code") if response.content else None
    got = (
        "hidden"
        if response.status_code == 404 and code in HIDDEN
        else "forbidden"
        if (response.status_code, code) == (403, "FORBIDDEN")
        else "users_only"
        if code == "USERS_ONLY"
        else "unauthenticated"
        if response.status_code == 401
        else "allowed"
    )
    assert got == want, (
        f"{principal_name} {route.method} {route.path}: {response.status_code} {code}"
    )
    if got == "allowed" and (
        route.destructive or (route.upstream, route.method) == ("catalog", "DELETE")
    ):
        assert response.status_code == route.success


async def _throwaway_org(
    client: httpx.AsyncClient, cast: dict[str, object], principal: Principal
) -> str:
    """A fresh organization the principal may destroy (owner user, or an owner token of it)."""
    api = httpx.AsyncClient(base_url=f"{str(client.base_url).rstrip('/')}/api/v1", timeout=10)
    async with api:
        owner: User = cast["owner"]  # type: ignore[assignment]
        org = await create_org(api, owner, "Doomed")
        headers = owner.auth
        if principal.kind == "token":
            made = await api.post(
                f"/organizations/{org}/api-tokens",
                headers=owner.auth,
                json={"name": "doom", "role": "owner"},
            )
            headers = token_auth(made.json()["token"])
        cast["throwaway"] = Principal("throwaway", headers, principal.kind, "owner")
        await eventually(lambda: _can_read(api, org, headers))
        return org


async def _can_read(api: httpx.AsyncClient, org: str, headers: dict[str, str]) -> bool:
    return (await api.get(f"/organizations/{org}", headers=headers)).status_code == 200


def test_every_public_route_is_in_the_table_with_a_declared_action() -> None:
    from slipway_gateway.api.proxy import Upstreams
    from slipway_gateway.api.routes import Gateway, TokenUsage
    from slipway_gateway.domain.projection import AccessProjection

    gateway = Gateway(
        projection=AccessProjection(),
        upstreams=Upstreams(http=httpx.AsyncClient(), urls={}, internal_token=None),
        usage=TokenUsage(),
    )
    router = gateway.router()
    declared = {(r.method, "/api/v1" + r.path) for r in ROUTES}
    for route in router.routes:
        methods = getattr(route, "methods", set())
        for method in methods:
            assert (method, route.path) in declared, f"{method} {route.path} is not in the table"
    for spec in ROUTES:
        if spec.access == "member":
            assert isinstance(spec.action, Action), f"{spec.method} {spec.path} has no action"
        else:
            assert spec.action is None
