"""Committed JSON Schema snapshots guard every event against incompatible changes."""

import json
import uuid
from datetime import UTC, datetime

import pytest

from slipway_contracts import REGISTRY, EventPayload, EventRegistry, new_event
from slipway_contracts.schemas import (
    SNAPSHOT_DIR,
    breaking_changes,
    render,
    schema_of,
    snapshot_name,
)


@pytest.mark.parametrize("payload", list(REGISTRY), ids=lambda p: snapshot_name(p))
def test_every_event_matches_its_committed_snapshot(payload: type[EventPayload]) -> None:
    path = SNAPSHOT_DIR / snapshot_name(payload)
    assert path.exists(), f"no snapshot for {payload.event_type}: run `make schemas`"
    committed = json.loads(path.read_text())
    current = schema_of(payload)
    problems = breaking_changes(committed, current)
    assert not problems, (
        f"breaking change to {payload.event_type} v{payload.event_version}: {problems}"
    )
    assert render(current) == path.read_text(), "additive change: run `make schemas` and commit"


def test_no_orphan_snapshots() -> None:
    expected = {snapshot_name(p) for p in REGISTRY}
    assert {p.name for p in SNAPSHOT_DIR.glob("*.json")} == expected


class Before(EventPayload):
    event_type = "test.Thing"
    topic = "test.thing.v1"
    a: int
    b: str | None = None


class AddsOptional(EventPayload):
    event_type = "test.Thing"
    topic = "test.thing.v1"
    a: int
    b: str | None = None
    c: list[int] | None = None


class AddsRequired(EventPayload):
    event_type = "test.Thing"
    topic = "test.thing.v1"
    a: int
    b: str | None = None
    c: int


class RemovesField(EventPayload):
    event_type = "test.Thing"
    topic = "test.thing.v1"
    a: int


class ChangesType(EventPayload):
    event_type = "test.Thing"
    topic = "test.thing.v1"
    a: str
    b: str | None = None


class MakesRequired(EventPayload):
    event_type = "test.Thing"
    topic = "test.thing.v1"
    a: int
    b: str


def test_additive_optional_field_is_compatible() -> None:
    assert breaking_changes(schema_of(Before), schema_of(AddsOptional)) == []


@pytest.mark.parametrize(
    ("after", "problem"),
    [
        (AddsRequired, "c: new field is required"),
        (RemovesField, "b: removed"),
        (ChangesType, "a: type changed"),
        (MakesRequired, "b: required changed"),
    ],
)
def test_breaking_changes_are_detected(after: type[EventPayload], problem: str) -> None:
    assert problem in breaking_changes(schema_of(Before), schema_of(after))


def test_registry_refuses_two_models_for_one_type() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        EventRegistry([Before, AddsOptional])


def test_envelope_round_trips_and_parses_to_its_payload() -> None:
    from slipway_contracts.events.identity import OrganizationCreated

    org, owner = uuid.uuid4(), uuid.uuid4()
    payload = OrganizationCreated(
        organization_id=org, name="Acme", owner_id=owner, created_at=datetime.now(UTC)
    )
    env = new_event(payload, subject=str(org), source="identity", organization_id=org)
    again = type(env).from_json(env.to_json())
    assert again == env
    assert env.correlation_id == str(env.id)
    assert REGISTRY.parse(again) == payload
