"""What a deployment does, decided from its snapshot (pure)."""

from __future__ import annotations

import uuid

import pytest

from slipway_deployer.domain import plan as p
from slipway_deployer.domain.state_machine import Action

STAGES = [
    {"id": str(uuid.UUID(int=1)), "name": "databases", "position": 0},
    {"id": str(uuid.UUID(int=2)), "name": "jobs", "position": 1},
    {"id": str(uuid.UUID(int=3)), "name": "applications", "position": 2},
]


def svc(name: str, kind: str, stage: int | None, **spec: object) -> dict[str, object]:
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
        "name": name,
        "kind": kind,
        "spec": spec,
        "stage_id": str(uuid.UUID(int=stage)) if stage else None,
    }


SNAPSHOT = {
    "stages": STAGES,
    "services": [
        svc("web", "application", 3, git={"url": "x"}),
        svc("api", "application", 3, git={"url": "y"}),
        svc("db", "database", 1, engine="postgresql"),
        svc("orphan", "container", None, image={"name": "busybox"}),
    ],
}


def names(stages: list[p.StagePlan]) -> list[tuple[str, list[str]]]:
    return [(s.name, [i.name for i in s.services]) for s in stages]


def test_deploy_runs_non_empty_stages_in_order_then_the_default_stage() -> None:
    assert names(p.plan(SNAPSHOT, Action.DEPLOY)) == [
        ("databases", ["db"]),
        ("applications", ["api", "web"]),
        ("default", ["orphan"]),
    ]
    assert [s.position for s in p.plan(SNAPSHOT, Action.DEPLOY)] == [0, 1, 2]


@pytest.mark.parametrize("action", [Action.STOP, Action.DELETE])
def test_stop_and_delete_run_in_reverse_so_apps_stop_before_their_databases(action) -> None:
    assert [n for n, _ in names(p.plan(SNAPSHOT, action))] == [
        "default",
        "applications",
        "databases",
    ]


def test_the_plan_does_not_depend_on_the_order_of_the_snapshot() -> None:
    shuffled = {"stages": STAGES[::-1], "services": SNAPSHOT["services"][::-1]}
    assert names(p.plan(shuffled, Action.DEPLOY)) == names(p.plan(SNAPSHOT, Action.DEPLOY))


def test_what_is_built() -> None:
    items = {i.name: i for s in p.plan(SNAPSHOT, Action.DEPLOY) for i in s.services}
    assert items["web"].needs_build and not items["db"].needs_build
    job = p.ServiceItem(uuid.uuid4(), "j", "lifecycle", {"git": None, "image": {"name": "x"}})
    assert not job.needs_build and job.triggers == {"start"}
    built_job = p.ServiceItem(uuid.uuid4(), "j", "cronjob", {"git": {"url": "x"}})
    assert built_job.needs_build


def test_scope_keeps_the_named_services_only() -> None:
    services = SNAPSHOT["services"]
    assert p.in_scope(services, []) == services
    assert p.in_scope(services, [uuid.UUID(services[0]["id"])]) == [services[0]]


def test_config_digest_changes_with_spec_and_variable_versions_never_values() -> None:
    spec = {"spec": {"image": {"name": "a"}}}
    var = {"id": "v1", "version": 1, "value": "secret-one"}
    digest = p.config_digest(spec, [var])
    assert p.config_digest(spec, [{**var, "value": "secret-two"}]) == digest
    assert p.config_digest(spec, [{**var, "version": 2}]) != digest
    assert p.config_digest({"spec": {"image": {"name": "b"}}}, [var]) != digest
    assert "secret" not in digest


def test_visible_variables_are_the_projects_the_environments_and_the_services_own() -> None:
    env, mine, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    rows = [
        {"scope": "project", "parent_id": uuid.uuid4(), "key": "P"},
        {"scope": "environment", "parent_id": env, "key": "E"},
        {"scope": "environment", "parent_id": uuid.uuid4(), "key": "OTHER_ENV"},
        {"scope": "service", "parent_id": mine, "key": "S"},
        {"scope": "service", "parent_id": other, "key": "OTHER_SVC"},
    ]
    seen = p.visible_variables(rows, environment_id=env, service_id=mine)
    assert [r["key"] for r in seen] == ["P", "E", "S"]


def test_image_reference() -> None:
    spec = {"image": {"registry": "127.0.0.1:15000", "name": "a/b", "tag": "1"}}
    assert p.image_reference(spec) == "127.0.0.1:15000/a/b:1"
    assert p.image_reference(spec, "2") == "127.0.0.1:15000/a/b:2"
    assert p.image_reference({"image": {"name": "busybox"}}) == "docker.io/busybox:latest"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, {}),
        ("  ", {}),
        (
            '{"A": "1", "B": 2, "C": {"value": "x"}, "D": [1]}',
            {"A": "1", "B": "2", "C": "x", "D": "[1]"},
        ),
    ],
)
def test_output_variables(raw, expected) -> None:
    assert p.output_variables(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "JSON object"),
        ('{"1BAD": "x"}', "not a valid variable name"),
        ('{"A-B": "x"}', "not a valid variable name"),
        ("{" + ",".join(f'"K{i}": "v"' for i in range(101)) + "}", "more than 100"),
    ],
)
def test_output_variables_refused_with_a_reason(raw, message) -> None:
    with pytest.raises(ValueError, match=message):
        p.output_variables(raw)
