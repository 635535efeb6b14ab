"""The public API conforms to its document (issue 15, item 2), checked by an outside tool:
schemathesis generates requests for every operation of ``/api/v1/openapi.json`` from their
schemas (valid and invalid ones) and sends them to a running platform through the gateway,
authenticated with both schemes (a session's ``Bearer`` token and an API ``Token``).

Every answer must be no server error (5xx), carry a status the operation declares and match
that status's schema. Path ids are, in a third of the cases, those of a real organization's
resources (cluster, project, environment, service, stage, variable, deployment, role,
invitation, member, git webhook), so the answers cover the found resource and not only its
404; a DELETE gets generated ids (the world stays for the operations after it). The real
environment has no service (the container service lives in another one), so its deploy-like
POSTs run nothing; a deploy of the service tries its image like any deploy. The run prints
the operation count and the number of generated cases; its size is bounded by
``MAX_EXAMPLES`` per operation and mode.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import jsonschema
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from slipway_contracts.openapi import load
from slipway_libs.testing.platform import Platform
from slipway_libs.testing.public_api import PASSWORD, User, add_member, create_org, sign_up

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

MAX_EXAMPLES = 4  # per operation and per generation mode (valid, invalid, real ids)
STATEFUL_SCENARIOS = 15  # sequences of up to 6 linked calls
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# streams: their answers never end (their own e2e tests follow them)
STREAMS = {("GET", "/api/v1/organizations/{org}/events")}
# a session this operation ends: each case gets one of its own
ENDS_SESSION = ("POST", "/api/v1/auth/logout")


@pytest.fixture(scope="module")
async def platform(platform_factory, devstack) -> Platform:
    return await platform_factory(
        ["identity", "catalog", "deployer", "scheduler", "logs", "gateway"]
    )


@dataclass
class World:
    owner: User
    token: str
    ids: dict[str, str]
    spare_sessions: list[str] = field(default_factory=list)


async def _world(api: httpx.AsyncClient, sessions: int) -> World:
    owner = await sign_up(api, "Schema")
    member = await sign_up(api, "Member")
    org = await create_org(api, owner, "Conformance")
    await add_member(api, org, owner, member, "viewer")
    auth = owner.auth

    async def made(path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await api.post(path, json=body, headers=auth)
        assert response.status_code in (200, 201, 202), (path, response.text)
        answer: dict[str, Any] = response.json()
        return answer

    token = (await made(f"/organizations/{org}/api-tokens", {"name": "ci", "role": "admin"}))[
        "token"
    ]
    cluster = (await api.get(f"/organizations/{org}/clusters", headers=auth)).json()["items"][0]
    project = await made(f"/organizations/{org}/projects", {"name": "conformance"})
    env = await made(
        f"/projects/{project['id']}/environments",
        {"name": "staging", "mode": "staging", "cluster_id": cluster["id"]},
    )
    service = await made(
        f"/environments/{env['id']}/services",
        {"kind": "container", "name": "web", "image": {"name": "nginx", "tag": "1"}},
    )
    stage = await made(f"/environments/{env['id']}/stages", {"name": "first"})
    variable = await made(
        "/variables",
        {"scope": "environment", "parent_id": env["id"], "key": "GREETING", "value": "hi"},
    )
    role = await made(f"/organizations/{org}/roles", {"name": "readers"})
    invitation = await made(
        f"/organizations/{org}/members", {"email": "later@example.com", "role": "viewer"}
    )
    git_webhook = await made(f"/organizations/{org}/git-webhooks", {})
    # an environment without services: deploy-like requests on it queue nothing heavy
    empty = await made(
        f"/projects/{project['id']}/environments",
        {"name": "empty", "mode": "development", "cluster_id": cluster["id"]},
    )
    deployment = await _deployed(api, auth, empty["id"])
    ids = {
        "org": org,
        "cluster": cluster["id"],
        "project": project["id"],
        "environment": empty["id"],
        "service": service["id"],
        "stage": stage["id"],
        "variable": variable["id"],
        "deployment": deployment,
        "role": role["id"],
        "invitation": invitation["id"],
        "user": member.id,
        "git_webhook": git_webhook["id"],
    }
    world = World(owner=owner, token=token, ids=ids)
    for _ in range(sessions):  # before the fuzzing's failed logins can throttle this address
        login = await api.post("/auth/login", json={"email": owner.email, "password": PASSWORD})
        assert login.status_code == 200, login.text
        world.spare_sessions.append(login.json()["access_token"])
    return world


async def _deployed(api: httpx.AsyncClient, auth: dict[str, str], env: str) -> str:
    """The id of a deployment of ``env`` (the deployer learns of a new environment by its
    events: asked until it knows it)."""
    deadline = time.monotonic() + 60
    while True:
        response = await api.post(f"/environments/{env}/deploy", headers=auth)
        if response.status_code == 202:
            deployment: str = response.json()["deployment_id"]
            return deployment
        assert time.monotonic() < deadline, f"the deployer never took the deploy: {response.text}"
        await asyncio.sleep(0.2)


@dataclass
class Tally:
    cases: int = 0
    steps: int = 0  # of the stateful scenarios
    slowest: list[tuple[float, str]] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


def _real_ids(method: str, path: str, ids: dict[str, str]) -> dict[str, str]:
    names = [part[1:-1] for part in path.split("/") if part.startswith("{")]
    if method == "DELETE" or not all(name in ids for name in names):
        return {}
    return {name: ids[name] for name in names}


def _run(operation: Any, base_url: str, world: World, tally: Tally) -> None:
    method, path = operation.method.upper(), operation.path
    real = _real_ids(method, path, world.ids)
    query = {"follow": False} if path.endswith("/logs") else None
    strategies = [
        operation.as_strategy(generation_mode=mode, query=query)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    ]
    if real:
        strategies.append(operation.as_strategy(path_parameters=real, query=query))
    schemes = iter(range(10**9))

    @settings(
        max_examples=MAX_EXAMPLES * len(strategies),
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=st.one_of(strategies))
    def fuzz(case: Any) -> None:
        headers = _credentials(operation, world, next(schemes))
        tally.cases += 1
        try:
            response = case.call(base_url=base_url, headers=headers, timeout=30)
        except requests.RequestException as exc:
            tally.failures.append(f"{method} {path}: no answer ({exc!r})")
            return
        tally.statuses[response.status_code] += 1
        _validate(case, response, headers, tally)

    fuzz()


def _validate(case: Any, response: Any, headers: dict[str, str] | None, tally: Tally) -> None:
    """The checks, each failure kept (not raised: no shrinking, every failure reported)."""
    try:
        case.validate_response(response, checks=CHECKS, headers=headers)
    except (AssertionError, BaseExceptionGroup) as exc:  # a Failure, a FailureGroup
        found = getattr(exc, "exceptions", [exc])
        problems = "; ".join(_short(f) for f in found)
        tally.failures.append(
            f"{case.method} {case.formatted_path} -> {response.status_code}: {problems}"
            f"\n    answer: {response.text[:300]}"
        )


def _short(failure: BaseException) -> str:
    """A failure's title and the first lines of its message (the schema excerpt left out)."""
    title = getattr(failure, "title", type(failure).__name__)
    message = str(getattr(failure, "message", failure))
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return f"{title}: {' | '.join(lines[:2])}"


def _credentials(operation: Any, world: World, n: int) -> dict[str, str]:
    """Both schemes in turn; the logout gets a session of its own each time."""
    if (operation.method.upper(), operation.path) == ENDS_SESSION:
        token = world.spare_sessions.pop() if world.spare_sessions else "spent"
        return {"authorization": f"Bearer {token}"}
    if n % 2:
        return {"authorization": f"Token {world.token}"}
    return world.owner.auth


async def test_every_operation_conforms_to_the_document(
    platform: Platform, record_property: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    base_url = platform.url("gateway")
    async with httpx.AsyncClient(base_url=f"{base_url}/api/v1", timeout=30) as api:
        served = (await api.get("/openapi.json")).json()
        assert served == load(), "the gateway serves contracts/openapi.json as it is"
        world = await _world(api, sessions=3 * MAX_EXAMPLES)
    schema = schemathesis.openapi.from_dict(served)
    operations = [result.ok() for result in schema.get_all_operations()]
    tally = Tally()
    fuzzed = [op for op in operations if (op.method.upper(), op.path) not in STREAMS]
    # blocking HTTP (requests, as schemathesis sends) off the event loop the platform runs on
    started = time.monotonic()
    await asyncio.to_thread(_run_all, fuzzed, base_url, world, tally)
    fuzzing_s = time.monotonic() - started
    await asyncio.to_thread(_run_stateful, schema, base_url, world, tally)
    scenarios_s = time.monotonic() - started - fuzzing_s
    summary = (
        f"schemathesis: {len(fuzzed)} operations of {len(operations)} "
        f"(streams skipped: {len(operations) - len(fuzzed)}), {tally.cases} generated cases, "
        f"{STATEFUL_SCENARIOS} stateful scenarios ({tally.steps} linked calls), "
        f"statuses {dict(sorted(tally.statuses.items()))}, {len(tally.failures)} failures "
        f"(cases {fuzzing_s:.0f} s, scenarios {scenarios_s:.0f} s; slowest operations: "
        + ", ".join(f"{name} {s:.0f} s" for s, name in sorted(tally.slowest)[-3:])
        + ")"
    )
    record_property("schemathesis", summary)  # in the JUnit report too
    with capsys.disabled():  # shown even when the output is captured
        print(f"\n{summary}")  # noqa: T201
    assert len(fuzzed) >= 90
    assert not tally.failures, f"{len(tally.failures)} failures:\n" + "\n".join(
        sorted(set(tally.failures))[:60]
    )


# a service of each kind (helm only on a cluster with Kubernetes: not the local one)
KIND_SAMPLES: dict[str, dict[str, Any]] = {
    "application": {
        "git": {"url": "https://git.example.com/acme/api.git"},
        "ports": [{"port": 3000, "public": True}],
        "healthchecks": {"readiness": {"type": "http", "path": "/health"}},
    },
    "container": {"image": {"name": "nginx", "tag": "1"}},
    "database": {"engine": "postgresql"},
    "cronjob": {"image": {"name": "busybox"}, "schedule": "0 3 * * *"},
    "lifecycle": {"image": {"name": "busybox"}, "triggers": ["start", "delete"]},
}


def _answer_validator(document: dict[str, Any], path: str, method: str, status: str) -> Any:
    answer = document["paths"][path][method]["responses"][status]["content"]["application/json"]
    return jsonschema.Draft202012Validator(
        {**answer["schema"], "components": document["components"]}
    )


async def test_every_kind_of_service_is_answered_as_the_document_says(platform: Platform) -> None:
    """The fuzzing meets a container service; here every kind the local cluster runs is
    created, read, listed and changed, and each answer checked against its kind's schema."""
    document = load()
    services, service = "/api/v1/environments/{environment}/services", "/api/v1/services/{service}"
    async with httpx.AsyncClient(base_url=f"{platform.url('gateway')}/api/v1", timeout=30) as api:
        owner = await sign_up(api, "Kinds")
        org = await create_org(api, owner, "Kinds")
        clusters = await api.get(f"/organizations/{org}/clusters", headers=owner.auth)
        cluster = clusters.json()["items"][0]
        project = await api.post(
            f"/organizations/{org}/projects", json={"name": "kinds"}, headers=owner.auth
        )
        env = await api.post(
            f"/projects/{project.json()['id']}/environments",
            json={"name": "kinds", "mode": "development", "cluster_id": cluster["id"]},
            headers=owner.auth,
        )
        env_id = env.json()["id"]
        offered = set(cluster["capabilities"]["kinds"]) & set(KIND_SAMPLES)
        if not cluster["capabilities"]["databases"]:
            offered.discard("database")  # a host without PostgreSQL binaries offers none
        assert {"application", "container", "cronjob", "lifecycle"} <= offered
        checks = {
            "created": _answer_validator(document, services, "post", "201"),
            "read": _answer_validator(document, service, "get", "200"),
            "changed": _answer_validator(document, service, "patch", "200"),
            "listed": _answer_validator(document, services, "get", "200"),
        }
        answers: list[tuple[str, str, Any]] = []
        for kind in sorted(offered):
            body = {"kind": kind, "name": f"{kind}-one", **KIND_SAMPLES[kind]}
            created = await api.post(
                f"/environments/{env_id}/services", json=body, headers=owner.auth
            )
            assert created.status_code == 201, created.text
            answers.append((kind, "created", created.json()))
            one = f"/services/{created.json()['id']}"
            answers.append((kind, "read", (await api.get(one, headers=owner.auth)).json()))
            change = {"description": f"the {kind}"}
            changed = await api.patch(one, json=change, headers=owner.auth)
            assert changed.status_code == 200, changed.text
            answers.append((kind, "changed", changed.json()))
        listed = await api.get(f"/environments/{env_id}/services", headers=owner.auth)
        answers.append(("all", "listed", listed.json()))
    assert {item["kind"] for item in listed.json()["items"]} == offered
    problems = [
        f"{kind} {how}: {error.message} at {list(error.absolute_path)}"
        for kind, how, answer in answers
        for error in checks[how].iter_errors(answer)
    ]
    assert problems == []
    for kind, how, answer in answers:
        if how == "read":  # the kind's own fields, with its defaults written out
            assert set(KIND_SAMPLES[kind]) <= set(answer), kind


def _run_all(operations: list[Any], base_url: str, world: World, tally: Tally) -> None:
    for operation in operations:
        started = time.monotonic()
        _run(operation, base_url, world, tally)
        tally.slowest.append((time.monotonic() - started, f"{operation.method} {operation.path}"))


def _run_stateful(schema: Any, base_url: str, world: World, tally: Tally) -> None:
    """Scenarios along the document's links: a created resource read, changed, acted on and
    deleted by its new id; a queued deployment read by the id its request answered."""
    turns = iter(range(10**9))
    names = iter(range(10**9))

    class Scenarios(schema.as_state_machine()):  # type: ignore[misc]
        def before_call(self, case: Any) -> None:
            if case.path.endswith("/logs") and case.query:
                case.query["follow"] = False  # one page, not the never-ending stream
            _unique_name(case, next(names))

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            headers = _credentials(case.operation, world, next(turns))
            return {"base_url": base_url, "headers": headers, "timeout": 30}

        def validate_response(
            self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any
        ) -> None:
            tally.steps += 1
            tally.statuses[response.status_code] += 1
            _validate(case, response, kwargs.get("headers"), tally)

    try:
        _scenarios(Scenarios)
    except Exception as exc:  # the run itself broke: reported like a failure, with its cause
        tally.failures.append(f"stateful run: {type(exc).__name__}: {str(exc)[:1500]}")


def _unique_name(case: Any, n: int) -> None:
    """A created resource's name made unique: a scenario that hypothesis draws again must meet
    the same answers (a name it created the first time would clash the second, 409 instead of
    201, and the links after it would differ: hypothesis stops on "inconsistent data
    generation"). A valid name stays valid (``a`` -> ``a-s7``), an invalid one invalid."""
    if case.method.upper() == "POST" and isinstance(case.body, dict):
        name = case.body.get("name")
        if isinstance(name, str) and name:
            case.body["name"] = f"{name}-s{n}"


def _scenarios(machine: Any) -> None:
    machine.run(
        settings=settings(
            max_examples=STATEFUL_SCENARIOS,
            stateful_step_count=6,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
    )
