"""Issue 10, flaws 5 to 7, through the public API: hostile text, deep JSON and loose types.

Every text field of every public request body reachable here is listed once in ``FIELDS``
(route, body template, field, what it holds); each hostile value is sent in it and must answer
a 4xx with a stable code (a NUL answered 500 before: PostgreSQL refuses it in text), change
nothing (the list or the read after it is the same as before), and leave the connection usable
(the read goes over the same, single connection). Names and one-line values refuse control,
bidi, zero-width and other format characters; descriptions allow tab and newline but not those;
variable values refuse only NUL. Numbers and booleans are strictly typed.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from slipway_libs.json_nesting import MAX_DEPTH
from slipway_libs.testing.platform import Platform
from slipway_libs.testing.public_api import PASSWORD, User, create_org, sign_up

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

MB = 1024 * 1024
PLACEHOLDER = "__HOSTILE__"


@dataclass(frozen=True)
class Hostile:
    name: str
    raw: str  # the JSON text that replaces the placeholder
    status: int
    code: str


def _in_text(char: str) -> str:
    return json.dumps(f"pay{char}roll")


NUL = Hostile("nul", _in_text("\x00"), 422, "VALIDATION_ERROR")
BIDI = Hostile("bidi-override", _in_text("\u202e"), 422, "VALIDATION_ERROR")
ZERO_WIDTH = Hostile("zero-width-space", _in_text("\u200b"), 422, "VALIDATION_ERROR")
HUGE = Hostile("1mb-string", json.dumps("a" * MB), 413, "PAYLOAD_TOO_LARGE")
DEEP = Hostile("nested-1000", "[" * 1000 + "]" * 1000, 400, "JSON_TOO_DEEP")
EVERY = (NUL, BIDI, ZERO_WIDTH, HUGE, DEEP)
# a variable's value may hold newlines, escapes and any printable text, but never NUL
VALUE_ONLY = (NUL, HUGE, DEEP)


@dataclass
class World:
    owner: User
    org: str
    project: str
    cluster: str
    environment: str
    service: str
    stage: str
    variable: str
    role: str


@dataclass(frozen=True)
class Case:
    method: str
    path: str  # formatted with the World's fields
    body: dict[str, Any]  # PLACEHOLDER marks the hostile field
    read: str | None  # what must read the same before and after (None: sign-up, see below)
    hostile: tuple[Hostile, ...] = EVERY

    def field(self) -> str:
        return next(_placeholders(self.body))


def _placeholders(value: Any, path: str = "") -> Any:
    if value == PLACEHOLDER:
        yield path.lstrip(".")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _placeholders(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _placeholders(item, f"{path}.{index}")


H = PLACEHOLDER
ORG = "/organizations/{org}"
ENV = "/environments/{environment}"
CONTAINER = {
    "name": "api",
    "kind": "container",
    "image": {"registry": "docker.io", "name": "library/nginx", "tag": "1.27"},
    "ports": [{"port": 8080}],
}
RULE = {"auto_stop": False, "timezone": "UTC", "weekdays": [], "start_time": None}
VARIABLE = {"scope": "environment", "parent_id": "{environment}", "key": "HOSTILE_KEY"}
VARIABLES = "/variables?scope=environment&parent_id={environment}"

FIELDS = [
    # identity
    Case("POST", "/auth/signup", {"email": "{email}", "password": PASSWORD, "name": H}, None),
    Case("POST", "/auth/signup", {"email": H, "password": PASSWORD, "name": "Eve"}, None),
    Case("POST", "/auth/signup", {"email": "{email}", "password": H, "name": "Eve"}, None, (NUL,)),
    Case("POST", "/organizations", {"name": H}, "/organizations"),
    Case("POST", "/organizations", {"name": "Acme", "description": H}, "/organizations"),
    Case("PATCH", ORG, {"name": H}, ORG),
    Case("PATCH", ORG, {"description": H}, ORG),
    Case("POST", f"{ORG}/members", {"email": H, "role": "viewer"}, f"{ORG}/invitations"),
    Case("POST", f"{ORG}/members", {"email": "i@example.com", "role": H}, f"{ORG}/invitations"),
    Case("POST", f"{ORG}/roles", {"name": H}, f"{ORG}/roles"),
    Case("POST", f"{ORG}/roles", {"name": "Ops", "description": H}, f"{ORG}/roles"),
    Case("PATCH", f"{ORG}/roles/{{role}}", {"name": H}, f"{ORG}/roles/{{role}}"),
    Case("PATCH", f"{ORG}/roles/{{role}}", {"description": H}, f"{ORG}/roles/{{role}}"),
    Case("POST", f"{ORG}/api-tokens", {"name": H, "role": "viewer"}, f"{ORG}/api-tokens"),
    Case("POST", f"{ORG}/api-tokens", {"name": "ci", "role": H}, f"{ORG}/api-tokens"),
    Case(
        "POST",
        f"{ORG}/api-tokens",
        {"name": "ci", "role": "viewer", "description": H},
        f"{ORG}/api-tokens",
    ),
    # catalog
    Case(
        "POST",
        f"{ORG}/clusters",
        {"name": H, "api_url": "https://kube.example.com", "token": "t0ken"},
        f"{ORG}/clusters",
    ),
    Case("POST", f"{ORG}/projects", {"name": H}, f"{ORG}/projects"),
    Case("POST", f"{ORG}/projects", {"name": "Shop", "description": H}, f"{ORG}/projects"),
    Case("PATCH", "/projects/{project}", {"name": H}, "/projects/{project}"),
    Case("PATCH", "/projects/{project}", {"description": H}, "/projects/{project}"),
    Case(
        "POST",
        "/projects/{project}/environments",
        {"name": H, "mode": "development", "cluster_id": "{cluster}"},
        "/projects/{project}/environments",
    ),
    Case(
        "POST",
        "/projects/{project}/environments",
        {"name": "dev", "mode": H, "cluster_id": "{cluster}"},
        "/projects/{project}/environments",
    ),
    Case("PATCH", ENV, {"name": H}, ENV),
    Case("POST", f"{ENV}/clone", {"name": H}, "/projects/{project}/environments"),
    Case("POST", f"{ENV}/stages", {"name": H}, f"{ENV}/stages"),
    Case("PATCH", "/stages/{stage}", {"name": H}, f"{ENV}/stages"),
    Case("POST", f"{ENV}/services", {**CONTAINER, "name": H}, f"{ENV}/services"),
    Case("POST", f"{ENV}/services", {**CONTAINER, "description": H}, f"{ENV}/services"),
    Case(
        "POST",
        f"{ENV}/services",
        {**CONTAINER, "image": {"name": "library/nginx", "tag": H}},
        f"{ENV}/services",
    ),
    Case(
        "POST",
        f"{ENV}/services",
        {**CONTAINER, "command": ["serve", H]},
        f"{ENV}/services",
        VALUE_ONLY,
    ),
    Case("PATCH", "/services/{service}", {"description": H}, "/services/{service}"),
    Case("PUT", f"{ENV}/deployment-rule", {**RULE, "timezone": H}, f"{ENV}/deployment-rule"),
    Case("PUT", f"{ENV}/deployment-rule", {**RULE, "start_time": H}, f"{ENV}/deployment-rule"),
    Case("POST", "/variables", {**VARIABLE, "key": H, "value": "v"}, VARIABLES),
    Case("POST", "/variables", {**VARIABLE, "value": H}, VARIABLES, VALUE_ONLY),
    Case("POST", "/variables", {**VARIABLE, "value": "v", "description": H}, VARIABLES),
    Case("PATCH", "/variables/{variable}", {"value": H}, "/variables/{variable}", VALUE_ONLY),
    Case("PATCH", "/variables/{variable}", {"description": H}, "/variables/{variable}"),
]

LOOSE_TYPES = [
    ("POST", f"{ENV}/services", {**CONTAINER, "ports": [{"port": True}]}, f"{ENV}/services"),
    ("POST", f"{ENV}/services", {**CONTAINER, "ports": [{"port": "80"}]}, f"{ENV}/services"),
    ("POST", f"{ENV}/services", {**CONTAINER, "ports": [{"port": 80.0}]}, f"{ENV}/services"),
    ("POST", f"{ENV}/services", {**CONTAINER, "min_instances": "2"}, f"{ENV}/services"),
    ("POST", f"{ENV}/services", {**CONTAINER, "auto_deploy": "false"}, f"{ENV}/services"),
    (
        "POST",
        f"{ENV}/services",
        {**CONTAINER, "ports": [{"port": 8080, "public": 1}]},
        f"{ENV}/services",
    ),
    ("PATCH", "/services/{service}", {"ports": [{"port": True}]}, "/services/{service}"),
    ("PATCH", "/services/{service}", {"ports": [{"port": "80"}]}, "/services/{service}"),
    ("PATCH", "/services/{service}", {"cpu_millicores": "500"}, "/services/{service}"),
    ("POST", f"{ENV}/stages", {"name": "late", "position": "1"}, f"{ENV}/stages"),
    ("POST", "/variables", {**VARIABLE, "value": "v", "is_secret": "true"}, VARIABLES),
    ("POST", "/variables", {**VARIABLE, "value": 1}, VARIABLES),
    ("PUT", f"{ENV}/deployment-rule", {**RULE, "auto_stop": 0}, f"{ENV}/deployment-rule"),
    (
        "POST",
        f"{ORG}/roles",
        {"name": "Ops", "projects": [{"project_id": "{project}", "is_admin": "yes"}]},
        f"{ORG}/roles",
    ),
    ("POST", f"{ORG}/api-tokens", {"name": 7, "role": "viewer"}, f"{ORG}/api-tokens"),
]


# --- the world the cases act on ------------------------------------------------------------


@pytest.fixture(scope="module")
async def world(platform: Platform) -> World:
    async with httpx.AsyncClient(base_url=f"{platform.url('gateway')}/api/v1", timeout=30) as api:
        owner = await sign_up(api, "Owner")
        org = await create_org(api, owner)
        cluster = (await _ok(api.get(f"/organizations/{org}/clusters", headers=owner.auth)))[
            "items"
        ][0]["id"]
        project = await _created(api, owner, f"/organizations/{org}/projects", {"name": "Shop"})
        env = await _created(
            api,
            owner,
            f"/projects/{project}/environments",
            {"name": "staging", "mode": "staging", "cluster_id": cluster},
        )
        service = await _created(
            api, owner, f"/environments/{env}/services", {**CONTAINER, "name": "web"}
        )
        stages = await _ok(api.get(f"/environments/{env}/stages", headers=owner.auth))
        variable = await _created(
            api,
            owner,
            "/variables",
            {"scope": "environment", "parent_id": env, "key": "GREETING", "value": "hi"},
        )
        role = await _created(api, owner, f"/organizations/{org}/roles", {"name": "Readers"})
    return World(
        owner=owner,
        org=org,
        project=project,
        cluster=cluster,
        environment=env,
        service=service,
        stage=stages["items"][0]["id"],
        variable=variable,
        role=role,
    )


async def _ok(request: Any) -> Any:
    response = await request
    assert response.status_code == 200, response.text
    return response.json()


async def _created(api: httpx.AsyncClient, owner: User, path: str, body: dict[str, Any]) -> str:
    response = await api.post(path, json=body, headers=owner.auth)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.fixture
async def one_connection(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    """Every request of a test over the same keep-alive connection to the gateway."""
    async with httpx.AsyncClient(
        base_url=f"{platform.url('gateway')}/api/v1",
        timeout=30,
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
    ) as client:
        yield client


def _fresh_email() -> str:
    return f"eve-{uuid.uuid4().hex[:10]}@example.com"


def _substitute(text: str, world: World, *, email: str = "") -> str:
    """The world's ids in place of ``{org}``... (a JSON text's own braces are left alone)."""
    names = ("org", "project", "cluster", "environment", "service", "stage", "variable", "role")
    for name in names:
        text = text.replace(f"{{{name}}}", str(getattr(world, name)))
    return text.replace("{email}", email)


async def _read(client: httpx.AsyncClient, path: str, world: World) -> Any:
    response = await client.get(_substitute(path, world), headers=world.owner.auth)
    assert response.status_code == 200, response.text  # the connection still serves
    return response.json()


CASES = [
    pytest.param(case, hostile, id=f"{case.method} {case.path} {case.field()} {hostile.name}")
    for case in FIELDS
    for hostile in case.hostile
]


@pytest.mark.parametrize(("case", "hostile"), CASES)
async def test_hostile_text_is_a_4xx_and_changes_nothing(
    world: World, one_connection: httpx.AsyncClient, case: Case, hostile: Hostile
) -> None:
    client, email = one_connection, _fresh_email()
    template = json.dumps(case.body).replace(json.dumps(PLACEHOLDER), hostile.raw)
    before = await _read(client, case.read, world) if case.read else None
    response = await client.request(
        case.method,
        _substitute(case.path, world),
        content=_substitute(template, world, email=email).encode(),
        headers={**world.owner.auth, "content-type": "application/json"},
    )
    assert response.status_code == hostile.status, response.text[:500]
    error = response.json()["error"]
    assert error["code"] == hostile.code, error
    if hostile.code == "VALIDATION_ERROR":  # the field is named; the input is never echoed
        assert case.field() in {detail["path"] for detail in error["details"]}, error
        assert "payroll" not in response.text
    if case.read is not None:
        assert await _read(client, case.read, world) == before
    else:  # a sign-up: nothing was created (the address is still free) and the connection serves
        again = {
            "email": email if case.field() != "email" else _fresh_email(),
            "password": PASSWORD,
            "name": "Eve",
        }
        signed_up = await client.post("/auth/signup", json=again)
        assert signed_up.status_code == 201, signed_up.text


@pytest.mark.parametrize(
    ("method", "path", "body", "read"),
    LOOSE_TYPES,
    ids=[f"{m} {p} {json.dumps(b)[-40:]}" for m, p, b, _ in LOOSE_TYPES],
)
async def test_numbers_and_booleans_are_strictly_typed(
    world: World,
    one_connection: httpx.AsyncClient,
    method: str,
    path: str,
    body: dict[str, Any],
    read: str,
) -> None:
    client = one_connection
    before = await _read(client, read, world)
    response = await client.request(
        method,
        _substitute(path, world),
        content=_substitute(json.dumps(body), world).encode(),
        headers={**world.owner.auth, "content-type": "application/json"},
    )
    # "port": true was stored as port 1, "80" was accepted
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    assert await _read(client, read, world) == before


async def test_deep_json_is_refused_before_authentication(
    one_connection: httpx.AsyncClient,
) -> None:
    deep = b'{"name":' + b"[" * 1000 + b"]" * 1000 + b"}"
    for path in ("/organizations", "/auth/signup", f"/projects/{uuid.uuid4()}"):
        response = await one_connection.post(
            path, content=deep, headers={"content-type": "application/json"}
        )
        # answered 500 before any authentication
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "JSON_TOO_DEEP"
    anonymous = await one_connection.post("/organizations", json={"name": "x"})
    assert anonymous.status_code == 401  # the same connection serves the next request


async def test_the_nesting_bound_is_exact(world: World, one_connection: httpx.AsyncClient) -> None:
    def rule_nested(depth: int) -> bytes:  # the body is one level; the weekdays list another
        return b'{"weekdays": ' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"

    path = f"/environments/{world.environment}/deployment-rule"
    headers = {**world.owner.auth, "content-type": "application/json"}
    too_deep = await one_connection.put(path, content=rule_nested(MAX_DEPTH + 1), headers=headers)
    assert too_deep.json()["error"]["code"] == "JSON_TOO_DEEP"
    within = await one_connection.put(path, content=rule_nested(MAX_DEPTH), headers=headers)
    assert within.status_code == 422  # parsed, then refused by the schema: not a nesting error
    assert within.json()["error"]["code"] == "VALIDATION_ERROR"


@pytest.mark.parametrize("service", ["identity", "catalog"])
async def test_each_service_bounds_the_nesting_itself(platform: Platform, service: str) -> None:
    """Defense in depth: a request that reached a service without the gateway's check."""
    deep = b"[" * 1000 + b"]" * 1000
    async with httpx.AsyncClient(base_url=platform.url(service), timeout=30) as direct:
        response = await direct.post(
            f"/internal/v1/organizations/{uuid.uuid4()}/projects",
            content=deep,
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "JSON_TOO_DEEP"


async def test_names_are_normalized_and_trimmed(
    world: World, one_connection: httpx.AsyncClient
) -> None:
    decomposed = "  Cafe\u0301\u00a0\u00a0Ops  "  # e + combining acute, no-break spaces
    created = await one_connection.post(
        f"/organizations/{world.org}/projects", json={"name": decomposed}, headers=world.owner.auth
    )
    assert created.status_code == 201, created.text
    assert created.json()["name"] == "Caf\u00e9 Ops"
    described = await one_connection.patch(
        f"/projects/{created.json()['id']}",
        json={"description": "first line\n\tsecond line, with an emoji 👩\u200d💻"},
        headers=world.owner.auth,
    )
    assert described.status_code == 200, described.text  # free text keeps tabs and newlines
    secret = "line one\nline two \u202e\u200b\x1b[0m"  # a value: anything but NUL
    variable = await one_connection.post(
        "/variables",
        json={"scope": "project", "parent_id": created.json()["id"], "key": "V", "value": secret},
        headers=world.owner.auth,
    )
    assert variable.status_code == 201, variable.text
    read = await one_connection.get(f"/variables/{variable.json()['id']}", headers=world.owner.auth)
    assert read.json()["value"] == secret
