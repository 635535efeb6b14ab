"""The public API's contract: ``contracts/openapi.json`` is what the code assembles (the route
table and the services' own models), and no change may break a client written against it.

As with the events (``contracts/tests/test_schemas.py``): a breaking change fails here with what
breaks; an additive one passes the compatibility check and only asks for ``make openapi``."""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path
from typing import Any

import pytest

from slipway_contracts.openapi import DOCUMENT_PATH, breaking_changes, load
from slipway_gateway.api.openapi import render
from slipway_gateway.api.table import ROUTES

ROOT = Path(__file__).parents[2]
REF = "#/components/schemas/"


def _assembled() -> dict[str, Any]:
    spec = importlib.util.spec_from_file_location("build_openapi", ROOT / "deploy" / "openapi.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    document: dict[str, Any] = module.document()
    return document


@pytest.fixture(scope="module")
def assembled() -> dict[str, Any]:
    return _assembled()


@pytest.fixture
def committed() -> dict[str, Any]:
    return load()


def test_no_change_breaks_the_committed_contract(
    committed: dict[str, Any], assembled: dict[str, Any]
) -> None:
    problems = breaking_changes(committed, assembled)
    assert problems == [], "breaking changes to the public API:\n" + "\n".join(problems)


def test_the_committed_document_is_the_one_the_code_assembles(assembled: dict[str, Any]) -> None:
    assert DOCUMENT_PATH.read_text() == render(assembled), (
        "the public API changed (additively): run `make openapi` and commit contracts/openapi.json"
    )


def test_every_route_is_an_operation_with_an_id_a_tag_and_typed_answers(
    committed: dict[str, Any],
) -> None:
    ids = set()
    for spec in ROUTES:
        operation = committed["paths"]["/api/v1" + spec.path][spec.method.lower()]
        ids.add(operation["operationId"])
        assert operation["tags"], spec.path
        success = operation["responses"][str(spec.success)]
        if spec.success != 204:
            media = success["content"]
            assert all(m.get("schema") or m.get("itemSchema") for m in media.values()), spec.path
        errors = [r for code, r in operation["responses"].items() if code[0] in "45"]
        assert errors, (spec.method, spec.path)
        for error in errors:
            assert error["content"]["application/json"]["schema"] == {"$ref": f"{REF}ErrorResponse"}
        names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
        assert names == {part[1:-1] for part in spec.path.split("/") if part.startswith("{")}
        if spec.access == "public":
            assert operation["security"] == []
        else:
            assert {"Bearer": []} in operation["security"]
    assert len(ids) == len(ROUTES), "operationIds are unique"
    assert set(committed["components"]["securitySchemes"]) == {"Bearer", "Token"}


# -- the compatibility rule, both ways, on the real document ---------------------------------


def _schema(document: dict[str, Any], path: str, method: str, where: str) -> dict[str, Any]:
    """The component schema a request body ("body") or a success answer names."""
    operation = document["paths"][path][method]
    holder = operation["requestBody"] if where == "body" else operation["responses"][where]
    ref = holder["content"]["application/json"]["schema"]["$ref"]
    schema: dict[str, Any] = document["components"]["schemas"][ref.removeprefix(REF)]
    return schema


PROJECTS = "/api/v1/organizations/{org}/projects"


def test_additive_changes_are_compatible(committed: dict[str, Any]) -> None:
    after = copy.deepcopy(committed)
    answer = _schema(after, PROJECTS, "post", "201")
    answer["properties"]["added"] = {"type": "string"}  # a new optional answer field
    body = _schema(after, PROJECTS, "post", "body")
    body["properties"]["optional"] = {"type": "integer"}  # a new optional request field
    after["paths"]["/api/v1/new-things"] = {"get": {"responses": {"200": {}}}}
    name = body["properties"]["name"]
    name.pop("maxLength", None)  # a request accepts more
    assert breaking_changes(committed, after) == []


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ("remove_operation", "POST /api/v1/organizations/{org}/projects: removed"),
        ("remove_answer_field", "POST /api/v1/organizations/{org}/projects 201.name: removed"),
        ("rename_answer_field", "POST /api/v1/organizations/{org}/projects 201.name: removed"),
        (
            "new_required_request_field",
            "POST /api/v1/organizations/{org}/projects body.region: new required field",
        ),
        (
            "narrow_request_type",
            "POST /api/v1/organizations/{org}/projects body.name: maxLength narrowed to 3",
        ),
        (
            "answer_type_changed",
            "POST /api/v1/organizations/{org}/projects 201.name: type widened to ['integer']",
        ),
    ],
)
def test_breaking_changes_are_detected(
    committed: dict[str, Any], change: str, problem: str
) -> None:
    after = copy.deepcopy(committed)
    answer = _schema(after, PROJECTS, "post", "201")
    body = _schema(after, PROJECTS, "post", "body")
    if change == "remove_operation":
        del after["paths"][PROJECTS]["post"]
    elif change == "remove_answer_field":
        del answer["properties"]["name"]
    elif change == "rename_answer_field":
        answer["properties"]["title"] = answer["properties"].pop("name")
    elif change == "new_required_request_field":
        body["properties"]["region"] = {"type": "string"}
        body.setdefault("required", []).append("region")
    elif change == "narrow_request_type":
        body["properties"]["name"]["maxLength"] = 3
    elif change == "answer_type_changed":
        answer["properties"]["name"] = {"type": "integer"}
    assert problem in breaking_changes(committed, after)


# -- what the document says of the service specs, retries and concurrent edits ---------------

SERVICES = "/api/v1/environments/{environment}/services"
SERVICE = "/api/v1/services/{service}"
KINDS = {"application", "container", "database", "cronjob", "lifecycle", "helm"}


def _body_validator(document: dict[str, Any], path: str, method: str) -> Any:
    import jsonschema

    schema = document["paths"][path][method]["requestBody"]["content"]["application/json"]
    root = {**schema["schema"], "components": document["components"]}
    return jsonschema.Draft202012Validator(root)


def test_a_service_is_created_from_one_of_the_catalogs_six_specs_picked_by_kind(
    committed: dict[str, Any],
) -> None:
    from slipway_catalog.domain.service_specs import SERVICE_KINDS

    body = committed["paths"][SERVICES]["post"]["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    assert body["required"] is True
    assert schema["discriminator"]["propertyName"] == "kind"
    assert set(schema["discriminator"]["mapping"]) == set(SERVICE_KINDS) == KINDS
    validator = _body_validator(committed, SERVICES, "post")
    app = {"kind": "application", "name": "web", "git": {"url": "https://example.com/a.git"}}
    assert validator.is_valid(app)
    assert not validator.is_valid({**app, "git": None}), "an application is built from git"
    assert not validator.is_valid({"kind": "spaceship", "name": "web"})
    assert validator.is_valid({"kind": "database", "name": "db", "engine": "postgresql"})


def test_a_service_update_is_a_merge_patch_of_its_spec(committed: dict[str, Any]) -> None:
    validator = _body_validator(committed, SERVICE, "patch")
    assert validator.is_valid({"image": {"tag": "2"}}), "a nested object merges key by key"
    assert validator.is_valid({"min_instances": None}), "null resets a field"
    assert validator.is_valid({})
    assert not validator.is_valid({"cpu_millicores": 1}), "the spec's bounds still hold"
    assert not validator.is_valid({"unknown_field": 1})


def test_git_credentials_answer_typed_credentials_and_never_a_secret(
    committed: dict[str, Any],
) -> None:
    path = "/api/v1/organizations/{org}/git-credentials"
    one = _schema(committed, path, "post", "201")
    page = _schema(committed, path, "get", "200")
    assert (
        page["properties"]["items"]["items"]
        == committed["paths"][path]["post"]["responses"]["201"]["content"]["application/json"][
            "schema"
        ]
    )
    assert {"id", "name", "kind", "host", "created_at"} <= set(one["required"])
    assert not {"token", "private_key"} & set(one["properties"])


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    ]


def _header(operation: dict[str, Any], name: str) -> bool:
    return any(p["in"] == "header" and p["name"] == name for p in operation.get("parameters", []))


def test_retries_and_concurrent_edits_are_documented(committed: dict[str, Any]) -> None:
    keyed = {(m, p) for m, p, o in _operations(committed) if _header(o, "Idempotency-Key")}
    triggers = ("deploy", "redeploy", "stop", "restart", "cancel", "rollback", "run", "delete")
    for method, path, _ in _operations(committed):
        if method == "POST" and path.rsplit("/", 1)[-1] in triggers:
            assert (method, path) in keyed, f"{method} {path} takes an Idempotency-Key"
    assert ("POST", SERVICES) in keyed
    for spec in ROUTES:  # a creating or triggering POST either takes a key or says it does not
        operation = committed["paths"]["/api/v1" + spec.path][spec.method.lower()]
        if spec.method == "POST" and spec.success in (201, 202) and spec.access != "public":
            assert _header(operation, "Idempotency-Key") or "Takes no `Idempotency-Key`" in (
                operation.get("description", "")
            ), spec.path
    for method, path in keyed:
        operation = committed["paths"][path][method.lower()]
        assert "IDEMPOTENCY_KEY_REUSED" in operation["responses"]["422"]["description"]
        assert "IDEMPOTENCY_KEY_IN_USE" in operation["responses"]["409"]["description"]
    matched = [(m, p, o) for m, p, o in _operations(committed) if _header(o, "If-Match")]
    assert {(m, p) for m, p, _ in matched} >= {("PATCH", SERVICE), ("DELETE", SERVICE)}
    for method, path, operation in matched:
        assert "PRECONDITION_FAILED" in operation["responses"]["412"]["description"], path
        success = next(r for c, r in operation["responses"].items() if c.startswith("2"))
        if "content" in success:
            assert "ETag" in success["headers"], f"{method} {path} answers the new version"
    created = committed["paths"][SERVICES]["post"]["responses"]["201"]
    assert {"ETag", "Idempotent-Replayed"} <= set(created["headers"])


def test_the_services_refusals_are_listed_with_their_codes(committed: dict[str, Any]) -> None:
    def conflicts(method: str, path: str) -> str:
        described: str = committed["paths"][path][method]["responses"]["409"]["description"]
        return described

    assert "SERVICE_NAME_TAKEN" in conflicts("post", SERVICES)
    assert "NOTHING_TO_STOP" in conflicts("post", "/api/v1/environments/{environment}/stop")
    assert "EMAIL_TAKEN" in conflicts("post", "/api/v1/auth/signup")
    assert "JOB_ALREADY_RUNNING" in conflicts("post", "/api/v1/services/{service}/run")
