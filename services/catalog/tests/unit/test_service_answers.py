"""A service's answer is its kind's spec and its ids, times and version (``api.answers``),
and the service routes answer through that model, so the document cannot drift from them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, get_args

import pytest
from fastapi.routing import APIRoute

from slipway_catalog.api.answers import ANSWERS, SERVICE_ANSWERS, ServiceOut, ServicePage
from slipway_catalog.api.routes import build_router
from slipway_catalog.api.schemas import service_fields, service_out
from slipway_catalog.domain.service_specs import SERVICE_KINDS, parse_spec
from slipway_catalog.domain.services import Service
from slipway_libs.openapi import NOTHING
from slipway_libs.testing.public_api import SERVICE_ANSWER_FIELDS

NOW = datetime(2026, 1, 1, tzinfo=UTC)
IMAGE = {"name": "busybox"}
SPECS: dict[str, dict[str, Any]] = {
    "application": {
        "git": {"url": "https://git.example.com/acme/api.git"},
        "ports": [{"port": 80}],
    },
    "container": {"image": IMAGE},
    "database": {"engine": "postgresql"},
    "cronjob": {"image": IMAGE, "schedule": "0 3 * * *"},
    "lifecycle": {"image": IMAGE},
    "helm": {
        "chart": {
            "source": "repository",
            "repository_url": "https://charts.example.com/stable",
            "name": "redis",
            "version": "19.0.1",
        }
    },
}


def _row(kind: str) -> Service:
    spec = parse_spec({"kind": kind, "name": "svc", **SPECS[kind]})
    return Service(
        id=uuid.uuid4(),
        organization_id=uuid.uuid4(),
        project_id=uuid.uuid4(),
        environment_id=uuid.uuid4(),
        name=spec.name,
        kind=kind,
        spec=spec.model_dump(mode="json"),
        stage_id=None,
        version=3,
        created_at=NOW,
        updated_at=NOW,
        deleted_at=None,
    )


def test_there_is_one_answer_per_kind_made_of_that_kinds_spec_model() -> None:
    by_kind = {
        get_args(model.model_fields["kind"].annotation)[0]: model for model in SERVICE_ANSWERS
    }
    assert set(by_kind) == set(SERVICE_KINDS)
    for kind, model in by_kind.items():
        spec = type(parse_spec({"kind": kind, "name": "svc", **SPECS[kind]}))
        assert issubclass(model, spec), f"{model.__name__} is built from {spec.__name__}"
        assert set(model.model_fields) == set(spec.model_fields) | SERVICE_ANSWER_FIELDS


@pytest.mark.parametrize("kind", SERVICE_KINDS)
def test_a_stored_service_is_answered_with_every_field_of_its_kind(kind: str) -> None:
    row = _row(kind)
    sent = service_out(row)
    answer = ServiceOut.model_validate(sent).model_dump(mode="json")
    assert set(answer) == set(row.spec) | SERVICE_ANSWER_FIELDS
    assert {k: answer[k] for k in row.spec} == row.spec, "the stored spec, as stored"
    assert answer["id"] == str(row.id) and answer["resource_version"] == 3
    assert answer["kind"] == kind


def test_an_answer_carries_only_the_documented_fields() -> None:
    sent = {**service_fields(_row("container")), "internal_note": "x"}
    answer = ServiceOut.model_validate(sent).model_dump(mode="json")
    assert "internal_note" not in answer


def test_every_documented_route_answers_through_its_documented_model() -> None:
    router = build_router(NOTHING, NOTHING, NOTHING, {})
    served = {
        f"{method} {route.path}": route.response_model
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    service_keys = [key for key, model in ANSWERS.items() if model in (ServiceOut, ServicePage)]
    assert len(service_keys) == 5
    for key, model in ANSWERS.items():
        assert served[key] is model, f"{key} answers through {model.__name__}"


def test_a_service_answer_writes_times_as_every_other_answer_does() -> None:
    """Projects, environments and identity's answers write ``+00:00`` (``isoformat``); a
    service answered through its model wrote pydantic's ``Z`` until ``Time`` said otherwise."""
    answer = ServiceOut.model_validate(service_out(_row("container"))).model_dump(mode="json")
    assert answer["created_at"] == NOW.isoformat() == "2026-01-01T00:00:00+00:00"
    assert answer["updated_at"] == NOW.isoformat()
