"""The role-by-route matrix: every public route called by every kind of principal, each answer held
to the expectation written independently of the policy (``tests/expected_permissions.py``).

Principals: each built-in role as a member and as an API token; custom roles that hold nothing,
a level on the shared environment's mode (viewer, deployer, manager), ``is_admin``, or levels on
other modes only; a stranger and another organization's token. An allowed cell must answer the
route's success status, or a business refusal its call names (``rbac_calls.CALLS``) — never
401/403/404 and never a 5xx; a forbidden cell 403 ``FORBIDDEN``; an outsider 404 (the
organization is hidden); an API token on a route for people 403 ``USERS_ONLY``. The lists a
custom role receives hold exactly what it may read.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from services.gateway.tests.expected_permissions import (
    BUILTIN_ROLES,
    EXPECTED,
    Grants,
    ProjectGrant,
    Target,
    custom_allows,
)
from services.gateway.tests.integration.rbac_calls import (
    APP,
    CALLS,
    GIT_CREDENTIAL,
    KUBE_API,
    MODE,
    WEBHOOK,
    Call,
    Caller,
    Cast,
    Ids,
    default_target,
    deployer_knows,
    join,
    new_environment,
    request_path,
)
from slipway_libs.testing.platform import Platform
from slipway_libs.testing.public_api import create_org, eventually, sign_up, token_auth

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Principal:
    name: str
    caller: Caller
    role: str | None  # a built-in role, "custom", or None for outsiders
    grants: Grants = field(default_factory=Grants)


# custom roles, by the grants they hold on the shared project and clusters
CUSTOM_ROLES: dict[str, Callable[[Ids], Grants]] = {
    "custom": lambda ids: Grants(),
    "custom-viewer": lambda ids: _grants(ids, {MODE: "viewer"}, "viewer"),
    "custom-deployer": lambda ids: _grants(ids, {MODE: "deployer"}, "env_creator"),
    "custom-manager": lambda ids: _grants(ids, {MODE: "manager"}, "env_creator"),
    "custom-admin": lambda ids: _grants(ids, {}, "admin", is_admin=True),
    # manager elsewhere: the shared environment's mode stays closed, and so do clones of it
    "custom-elsewhere": lambda ids: Grants(
        projects={
            ids["project"]: ProjectGrant(modes={"production": "manager", "development": "manager"})
        },
        clusters={ids["local"]: "env_creator"},
    ),
}
PRINCIPALS = (
    [f"user:{r}" for r in BUILTIN_ROLES]
    + [f"token:{r}" for r in BUILTIN_ROLES]
    + ["user:custom"]
    + [f"token:{c}" for c in CUSTOM_ROLES]
    + ["user:stranger", "token:other-org"]
)
MATRIX_ROUTES = [key for key, rule in EXPECTED.items() if rule.access != "public"]
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


def _grants(ids: Ids, modes: dict[str, str], cluster: str, *, is_admin: bool = False) -> Grants:
    return Grants(
        projects={ids["project"]: ProjectGrant(is_admin=is_admin, modes=modes)},
        clusters={ids["local"]: cluster, ids["managed"]: cluster},
    )


def _role_body(name: str, grants: Grants) -> dict[str, Any]:
    return {
        "name": name,
        "projects": [
            {"project_id": p, "is_admin": g.is_admin, "environments": dict(g.modes)}
            for p, g in grants.projects.items()
        ],
        "clusters": [{"cluster_id": c, "permission": lvl} for c, lvl in grants.clusters.items()],
    }


@pytest.fixture(scope="module")
async def platform(platform_factory) -> Platform:
    return await platform_factory(
        ["identity", "catalog", "deployer", "logs", "scheduler", "gateway"]
    )


@pytest.fixture(scope="module")
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=platform.url("gateway"), timeout=30) as client:
        yield client


Scene = tuple[Cast, dict[str, Principal]]


@pytest.fixture(scope="module")
async def cast(platform: Platform) -> AsyncIterator[Scene]:
    async with httpx.AsyncClient(base_url=f"{platform.url('gateway')}/api/v1", timeout=30) as api:
        owner = await sign_up(api, "Owner")
        org = await create_org(api, owner)
        the_cast = Cast(
            api=api,
            org=org,
            owner=owner,
            heir=await sign_up(api, "Heir"),
            leaver=await sign_up(api, "Leaver"),
        )
        the_cast.ids = {"org": org, "heir": the_cast.heir.id, "leaver": the_cast.leaver.id}
        await _catalog(the_cast)
        await _identity(the_cast)
        principals = await _principals(the_cast)
        await _deployed(the_cast)
        yield the_cast, principals


async def _made(api: httpx.AsyncClient, owner_auth: dict[str, str], path: str, body: Any) -> Any:
    made = await api.post(path, json=body, headers=owner_auth)
    assert made.status_code == 201, f"{path}: {made.text}"
    return made.json()


async def _catalog(cast: Cast) -> None:
    """A local and a self-managed cluster, a project with a staging environment holding a
    service, a stage and a variable; a spare cluster and project no custom role holds."""
    api, auth, org, ids = cast.api, cast.owner.auth, cast.org, cast.ids
    clusters = (await api.get(f"/organizations/{org}/clusters", headers=auth)).json()["items"]
    ids["local"] = next(c["id"] for c in clusters if c["kind"] == "local")
    for key in ("managed", "spare_cluster"):
        body = {"name": key.replace("_", "-"), "api_url": KUBE_API, "token": "t"}
        ids[key] = (await _made(api, auth, f"/organizations/{org}/clusters", body))["id"]
    for key in ("project", "spare_project"):
        body = {"name": key.replace("_", "-")}
        ids[key] = (await _made(api, auth, f"/organizations/{org}/projects", body))["id"]
    env_body = {"name": "shared", "mode": MODE, "cluster_id": ids["local"]}
    env = ids["environment"] = (
        await _made(api, auth, f"/projects/{ids['project']}/environments", env_body)
    )["id"]
    service_body = {**APP, "name": "web"}
    ids["service"] = (await _made(api, auth, f"/environments/{env}/services", service_body))["id"]
    ids["stage"] = (await _made(api, auth, f"/environments/{env}/stages", {"name": "extra"}))["id"]
    variable = {"scope": "environment", "parent_id": env, "key": "K", "value": "v"}
    ids["variable"] = (await _made(api, auth, "/variables", variable))["id"]


async def _identity(cast: Cast) -> None:
    """A spare custom role, an API token and a pending invitation for the cells to point at."""
    api, auth, org, ids = cast.api, cast.owner.auth, cast.org, cast.ids
    ids["role"] = (await _made(api, auth, f"/organizations/{org}/roles", {"name": "Spare"}))["id"]
    token_body = {"name": "spare", "role": "viewer"}
    ids["token"] = (await _made(api, auth, f"/organizations/{org}/api-tokens", token_body))["id"]
    webhooks = f"/organizations/{org}/webhooks"
    ids["webhook"] = (await _made(api, auth, webhooks, dict(WEBHOOK)))["id"]
    git_webhooks = f"/organizations/{org}/git-webhooks"
    ids["git_webhook"] = (await _made(api, auth, git_webhooks, {"description": "spare"}))["id"]
    git_credentials = f"/organizations/{org}/git-credentials"
    ids["git_credential"] = (await _made(api, auth, git_credentials, GIT_CREDENTIAL))["id"]
    invite = {"email": f"pending-{uuid.uuid4().hex[:8]}@example.com", "role": "viewer"}
    ids["invitation"] = (await _made(api, auth, f"/organizations/{org}/members", invite))["id"]


async def _principals(cast: Cast) -> dict[str, Principal]:
    api, auth, org = cast.api, cast.owner.auth, cast.org
    found = {"user:owner": Principal("user:owner", Caller(auth, "user", cast.owner), "owner")}
    roles = {role: role for role in BUILTIN_ROLES}
    for name, grants_of in CUSTOM_ROLES.items():
        body = _role_body(name, grants_of(cast.ids))
        roles[name] = (await _made(api, auth, f"/organizations/{org}/roles", body))["id"]
    for role in [*BUILTIN_ROLES[1:], "custom"]:
        user = await sign_up(api, role.capitalize())
        await join(cast, org, user, roles[role])
        caller = Caller(user.auth, "user", user)
        found[f"user:{role}"] = _principal(f"user:{role}", caller, role, cast.ids)
        cast.ids[f"{role}_user"] = user.id
    for role in [*BUILTIN_ROLES, *CUSTOM_ROLES]:
        body = {"name": role, "role": roles[role]}
        made = await _made(api, auth, f"/organizations/{org}/api-tokens", body)
        caller = Caller(token_auth(made["token"]), "token")
        found[f"token:{role}"] = _principal(f"token:{role}", caller, role, cast.ids)
    stranger = await sign_up(api, "Stranger")
    elsewhere = await create_org(api, stranger, "Elsewhere")
    body = {"name": "x", "role": "owner"}
    foreign = await _made(api, stranger.auth, f"/organizations/{elsewhere}/api-tokens", body)
    found["user:stranger"] = Principal(
        "user:stranger", Caller(stranger.auth, "user", stranger), None
    )
    found["token:other-org"] = Principal(
        "token:other-org", Caller(token_auth(foreign["token"]), "token"), None
    )
    for principal in found.values():  # every credential and grant is known to the gateway
        await eventually(lambda p=principal: _settled(api, cast, p))
    return found


def _principal(name: str, caller: Caller, role: str, ids: Ids) -> Principal:
    if role in CUSTOM_ROLES:
        return Principal(name, caller, "custom", CUSTOM_ROLES[role](ids))
    return Principal(name, caller, role)


async def _settled(api: httpx.AsyncClient, cast: Cast, principal: Principal) -> bool:
    if (await api.get("/organizations", headers=principal.caller.headers)).status_code != 200:
        return False
    if principal.role != "custom" or not principal.grants.projects:
        return True
    project = await api.get(f"/projects/{cast.ids['project']}", headers=principal.caller.headers)
    return project.status_code == 200


async def _deployed(cast: Cast) -> None:
    """The shared environment's deployment stays under way (no builder runs here); an empty
    environment of the same mode and cluster deploys at once, so that redeploy and rollback
    have a successful deployment to start from."""
    env = cast.ids["environment"]
    await deployer_knows(cast, f"/services/{cast.ids['service']}/status")
    deployed = await cast.api.post(f"/environments/{env}/deploy", headers=cast.owner.auth)
    assert deployed.status_code == 202, deployed.text
    quiet = cast.ids["quiet_environment"] = await new_environment(cast)
    await deployer_knows(cast, f"/environments/{quiet}/status")
    deployed = await cast.api.post(f"/environments/{quiet}/deploy", headers=cast.owner.auth)
    assert deployed.status_code == 202, deployed.text
    cast.ids["deployment"] = deployed.json()["request_id"]

    async def succeeded() -> bool:
        path = f"/deployments/{cast.ids['deployment']}"
        read = await cast.api.get(path, headers=cast.owner.auth)
        return read.status_code == 200 and read.json()["status"] == "SUCCESS"

    await eventually(succeeded, within_s=20)


def expected(key: tuple[str, str], principal: Principal, ids: Ids) -> str:
    rule = EXPECTED[key]
    if rule.access == "user":
        allowed = principal.caller.kind == "user" or rule.tokens_too
        return "allowed" if allowed else "users_only"
    if principal.role is None:
        return "hidden"
    if principal.role == "custom":
        allowed = custom_allows(rule.custom, principal.grants, _target(key, ids))
    else:
        allowed = principal.role in rule.roles
    return "allowed" if allowed else "forbidden"


def _target(key: tuple[str, str], ids: Ids) -> Target:
    call = CALLS[key]
    return call.target(ids) if call.target else default_target(key[1], ids, call.params)


def outcome(response: httpx.Response, success: int, call: Call) -> str:
    code = _code(response)
    if response.status_code == 404 and code in HIDDEN:
        return "hidden"
    if (response.status_code, code) == (403, "FORBIDDEN"):
        return "forbidden"
    if (response.status_code, code) == (403, "USERS_ONLY"):
        return "users_only"
    if response.status_code == success or (response.status_code, code) in call.accepts:
        return "allowed"
    return f"unexpected {response.status_code} {code}: {response.text[:300]}"


def _code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error.get("code") if isinstance(error, dict) else None


@pytest.mark.parametrize("principal_name", PRINCIPALS)
@pytest.mark.parametrize("key", MATRIX_ROUTES, ids=lambda k: f"{k[0]} {k[1]}")
async def test_matrix_cell(
    client: httpx.AsyncClient, cast: Scene, key: tuple[str, str], principal_name: str
) -> None:
    the_cast, principals = cast
    principal: Principal = principals[principal_name]
    call, rule = CALLS[key], EXPECTED[key]
    want = expected(key, principal, the_cast.ids)
    ids, caller = the_cast.ids, principal.caller
    if want == "allowed" and call.fresh is not None:
        ids, caller = await call.fresh(the_cast, caller)
    response = await client.request(
        key[0],
        request_path(key[1], call, ids),
        json=call.body(ids) if call.body else None,
        headers=caller.headers,
    )
    got = outcome(response, rule.success, call)
    assert got == want, f"{principal_name} {key[0]} {key[1]}: {got}"
    if want == "allowed" and principal.role == "custom" and key in LISTS:
        await _only_readable(the_cast, key, response, principal)


# lists a custom role receives filtered: the route, and the route that reads one item
LISTS = {
    ("GET", "/organizations/{org}/projects"): ("GET", "/projects/{project}"),
    ("GET", "/projects/{project}/environments"): ("GET", "/environments/{environment}"),
}


async def _only_readable(
    cast: Cast, key: tuple[str, str], response: httpx.Response, principal: Principal
) -> None:
    """The list holds every item, as the owner sees it, that the principal may read, and no
    other."""
    everything = await cast.api.get(
        request_path(key[1], CALLS[key], cast.ids).removeprefix("/api/v1"),
        headers=cast.owner.auth,
    )
    need = EXPECTED[LISTS[key]].custom
    project = key == ("GET", "/organizations/{org}/projects")
    readable = {
        item["id"]
        for item in everything.json()["items"]
        if custom_allows(
            need,
            principal.grants,
            Target(project=item["id"])
            if project
            else Target(cast.ids["project"], item["mode"], item["cluster_id"]),
        )
    }
    assert {item["id"] for item in response.json()["items"]} == readable, principal.name


async def test_public_routes_answer_without_credentials(client: httpx.AsyncClient) -> None:
    email = f"pub-{uuid.uuid4().hex[:10]}@example.com"
    credentials = {"email": email, "password": "correct horse battery"}
    answers = {}
    signup = await client.post("/api/v1/auth/signup", json={**credentials, "name": "Pub"})
    answers[("POST", "/auth/signup")] = signup.status_code
    login = await client.post("/api/v1/auth/login", json=credentials)
    answers[("POST", "/auth/login")] = login.status_code
    refresh = {"refresh_token": login.json()["refresh_token"]}
    answers[("POST", "/auth/refresh")] = (
        await client.post("/api/v1/auth/refresh", json=refresh)
    ).status_code
    answers[("POST", "/hooks/git/{git_webhook}")] = await _signed_git_ping(client)
    public = {key: rule.success for key, rule in EXPECTED.items() if rule.access == "public"}
    assert answers == public


async def _signed_git_ping(client: httpx.AsyncClient) -> int:
    """A git provider's delivery, without credentials: only its signature authenticates it."""
    async with httpx.AsyncClient(base_url=client.base_url.join("/api/v1"), timeout=30) as api:
        owner = await sign_up(api, "Hooks")
        org = await create_org(api, owner)
        made = await api.post(f"/organizations/{org}/git-webhooks", json={}, headers=owner.auth)
    assert made.status_code == 201, made.text
    body = b'{"zen": "Design for failure."}'
    mac = hmac.new(made.json()["secret"].encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "content-type": "application/json",
        "x-github-event": "ping",
        "x-github-delivery": str(uuid.uuid4()),
        "x-hub-signature-256": f"sha256={mac}",
    }
    path = f"/api/v1/hooks/git/{made.json()['id']}"
    unsigned = await client.post(path, content=body, headers={**headers, "x-hub-signature-256": ""})
    assert unsigned.status_code == 401, unsigned.text
    return (await client.post(path, content=body, headers=headers)).status_code


async def test_every_route_the_running_gateway_serves_has_an_expected_row(
    client: httpx.AsyncClient,
) -> None:
    """What the running gateway publishes (its OpenAPI document): every operation under
    /api/v1, however it was mounted, has a row, and so a cell in this matrix."""
    document = (await client.get("/api/v1/openapi.json")).json()
    published = {
        (method.upper(), path.removeprefix("/api/v1"))
        for path, operations in document["paths"].items()
        if path.startswith("/api/v1/")
        for method in operations
        if method in ("get", "post", "put", "patch", "delete")
    }
    assert published, "the gateway publishes no route"
    assert published - set(EXPECTED) == set(), "published routes without an expected row"


def test_every_public_route_has_an_expectation_and_a_call() -> None:
    """The routes the gateway really serves (its router, not its table), each with a row in the
    expectation and a way to call it: a new route cannot go untested."""
    from slipway_gateway.api.proxy import Upstreams
    from slipway_gateway.api.routes import Gateway, TokenUsage
    from slipway_gateway.domain.projection import AccessProjection

    gateway = Gateway(
        projection=AccessProjection(),
        upstreams=Upstreams(http=httpx.AsyncClient(), urls={}, internal_token=None),
        usage=TokenUsage(),
    )
    served = {
        (method, route.path.removeprefix("/api/v1"))
        for route in gateway.router().routes
        for method in getattr(route, "methods", set())
    }
    assert served, "the router serves no route"
    assert served - set(EXPECTED) == set(), "routes without an expected row"
    assert set(EXPECTED) - served == set(), "expected rows for routes the gateway lacks"
    assert set(MATRIX_ROUTES) - set(CALLS) == set(), "routes the matrix cannot call"
