"""Every public operation's success answer is typed in the document (issue 15, item 1): a
client can read each field it gets from ``contracts/openapi.json``, and schemathesis
(tests/e2e/test_openapi_conformance.py) checks the real answers against it.

An untyped answer (``untyped_answers``) fails here unless it is allowed below with its reason.
A service is answered as its kind: the catalog's spec model of that kind (what its create body
is validated with) plus its ids, times and version, told apart by ``kind``.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from slipway_contracts.openapi import breaking_changes, load
from slipway_libs.testing.public_api import SERVICE_ANSWER_FIELDS
from tests.contract.untyped_answers import untyped_answers, untyped_fields

REF = "#/components/schemas/"
KINDS = {"application", "container", "database", "cronjob", "lifecycle", "helm"}
SERVICE = "/api/v1/services/{service}"
SERVICES = "/api/v1/environments/{environment}/services"

# a service's spec holds no credential (URLs with one are refused): a private repository is
# reached through a git credential, a resource of its own whose answers never hold its secret
SECRETS = {"token", "password", "private_key", "secret", "credentials"}

# "METHOD /path STATUS media type" -> why its answer may stay untyped (none today)
ALLOWED_UNTYPED: dict[str, str] = {}

# fields inside typed answers that say nothing of their content, each with why; a new one fails
ALLOWED_UNTYPED_FIELDS: dict[str, str] = {
    "DeploymentDetailOut.snapshot": "the configuration a deployment deployed, as it was then: "
    "services of every kind and variables, a document of its own (not versioned with the API)",
    "ServiceRunOut.steps": "a service run's steps as the runtime reported them (deployer, not "
    "typed yet)",
    "AuditEventOut.change": "what the audited change was: the changed resource's fields, any "
    "resource of any service",
    "WebhookDeliveryOut.request": "the request a webhook delivery sent, as it was sent",
}


@pytest.fixture(scope="module")
def committed() -> dict[str, Any]:
    return load()


def _schema(document: dict[str, Any], name: str) -> dict[str, Any]:
    schema: dict[str, Any] = document["components"]["schemas"][name]
    return schema


def _answer(document: dict[str, Any], path: str, method: str, status: str) -> dict[str, Any]:
    responses = document["paths"][path][method]["responses"]
    schema: dict[str, Any] = responses[status]["content"]["application/json"]["schema"]
    return schema


def test_every_public_success_answer_is_typed(committed: dict[str, Any]) -> None:
    found = untyped_answers(committed)
    reported = {line.split(": ", 1)[0] for line in found}
    assert reported <= set(ALLOWED_UNTYPED), "untyped success answers:\n" + "\n".join(
        line for line in found if line.split(": ", 1)[0] not in ALLOWED_UNTYPED
    )
    assert set(ALLOWED_UNTYPED) <= reported, "typed since: leave the allow-list"


def test_no_new_untyped_field_inside_an_answer(committed: dict[str, Any]) -> None:
    parts = {line.rsplit(": ", 1)[1] for line in untyped_fields(committed)}
    assert parts <= set(ALLOWED_UNTYPED_FIELDS), "untyped fields in answers: " + ", ".join(
        sorted(parts - set(ALLOWED_UNTYPED_FIELDS))
    )
    assert set(ALLOWED_UNTYPED_FIELDS) <= parts, "typed since: leave the allow-list"


@pytest.mark.parametrize(
    "answer",
    [
        None,
        {},
        {"type": "object"},
        {"type": "object", "additionalProperties": True},
        {"$ref": f"{REF}Anything"},
    ],
)
def test_an_untyped_answer_is_found(answer: dict[str, Any] | None) -> None:
    content = {} if answer is None else {"application/json": {"schema": answer}}
    document = {
        "paths": {"/x": {"get": {"responses": {"200": {"content": content}}}}},
        "components": {"schemas": {"Anything": {"type": "object", "title": "Anything"}}},
    }
    assert [line.split(":")[0] for line in untyped_answers(document)] == [
        "GET /x 200" if answer is None else "GET /x 200 application/json"
    ]
    typed = {"type": "object", "properties": {"a": {"type": "string"}}}
    document["paths"]["/x"]["get"]["responses"]["200"]["content"] = {
        "application/json": {"schema": typed}
    }
    assert untyped_answers(document) == []


def test_a_service_is_answered_as_its_kind(committed: dict[str, Any]) -> None:
    one = {"$ref": f"{REF}ServiceOut"}
    assert _answer(committed, SERVICE, "get", "200") == one
    assert _answer(committed, SERVICE, "patch", "200") == one
    assert _answer(committed, SERVICE + "/stage", "put", "200") == one
    assert _answer(committed, SERVICES, "post", "201") == one
    page = _schema(committed, _answer(committed, SERVICES, "get", "200")["$ref"][len(REF) :])
    assert page["properties"]["items"]["items"] == one

    union = _schema(committed, "ServiceOut")
    assert union["discriminator"]["propertyName"] == "kind"
    mapping = union["discriminator"]["mapping"]
    assert set(mapping) == KINDS
    body = committed["paths"][SERVICES]["post"]["requestBody"]["content"]["application/json"]
    specs = body["schema"]["discriminator"]["mapping"]
    for kind, ref in mapping.items():
        member = _schema(committed, ref[len(REF) :])
        spec = _schema(committed, specs[kind][len(REF) :])
        assert member["properties"]["kind"]["const"] == kind
        assert set(member["properties"]) == set(spec["properties"]) | SERVICE_ANSWER_FIELDS, kind
        assert set(member["required"]) == set(member["properties"]), "every field, always"
        assert not SECRETS & set(member["properties"]), "credentials are git credentials"
        for field, schema in spec["properties"].items():  # the spec's own field types
            shape = {k: v for k, v in schema.items() if k not in ("default", "description")}
            assert {k: member["properties"][field].get(k) for k in shape} == shape, (kind, field)
    application = _schema(committed, mapping["application"][len(REF) :])
    assert application["properties"]["git"] == {"$ref": f"{REF}GitSource"}
    assert not SECRETS & set(_schema(committed, "GitSource")["properties"])
    database = _schema(committed, mapping["database"][len(REF) :])
    assert database["properties"]["engine"]["enum"] == ["postgresql", "mysql", "mongodb", "redis"]


def test_a_field_removed_from_one_kinds_answer_is_a_breaking_change(
    committed: dict[str, Any],
) -> None:
    after = copy.deepcopy(committed)
    application = _schema(committed, "ServiceOut")["discriminator"]["mapping"]["application"]
    del _schema(after, application[len(REF) :])["properties"]["git"]
    problems = breaking_changes(committed, after)
    assert f"GET {SERVICE} 200[application].git: removed" in problems
    assert f"POST {SERVICES} 201[application].git: removed" in problems

    after = copy.deepcopy(committed)
    database = _schema(committed, "ServiceOut")["discriminator"]["mapping"]["database"]
    _schema(after, database[len(REF) :])["properties"]["added"] = {"type": "string"}
    assert breaking_changes(committed, after) == [], "an added field is compatible"
