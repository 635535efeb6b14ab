"""Pure parts of the CLI: what the user typed made into request bodies, and the output formats."""

from __future__ import annotations

import io
import json

import pytest
import yaml
from rich.console import Console

from slipway_cli.commands.variables import resolved_rows
from slipway_cli.inputs import (
    ServiceOptions,
    UsageError,
    assignment,
    image,
    merge_patch,
    port,
    service_body,
)
from slipway_cli.output import SECRET_MASK, Output, cell, fields, render, serialized, tsv
from slipway_cli.watch import Transitions, result_lines


def test_assignments_keep_everything_after_the_first_equals_sign() -> None:
    assert assignment("URL=postgres://u:p@h/db?a=b") == ("URL", "postgres://u:p@h/db?a=b")
    assert assignment("EMPTY=") == ("EMPTY", "")
    for bad in ("NOVALUE", "1ABC=x", "A-B=x", "=x"):
        with pytest.raises(UsageError):
            assignment(bad)


@pytest.mark.parametrize(
    ("reference", "tag", "expected"),
    [
        ("nginx", None, ("docker.io", "nginx", "latest")),
        ("nginx:1.27", None, ("docker.io", "nginx", "1.27")),
        ("library/nginx", None, ("docker.io", "library/nginx", "latest")),
        ("127.0.0.1:15000/slipway/busybox:1", None, ("127.0.0.1:15000", "slipway/busybox", "1")),
        ("localhost/app", "v2", ("localhost", "app", "v2")),
        ("ghcr.io/acme/api:old", "new", ("ghcr.io", "acme/api", "new")),
    ],
)
def test_image_references_are_read_as_docker_reads_them(
    reference: str, tag: str | None, expected: tuple[str, str, str]
) -> None:
    assert tuple(image(reference, tag).values()) == expected


def test_ports_take_a_protocol_and_refuse_nonsense() -> None:
    assert port("8080") == {"port": 8080, "protocol": "http"}
    assert port("5432/tcp") == {"port": 5432, "protocol": "tcp"}
    for bad in ("0", "70000", "http", "80/udp"):
        with pytest.raises(UsageError):
            port(bad)


def test_each_kind_gets_the_fields_it_needs() -> None:
    app = service_body(
        ServiceOptions(
            name="web", kind="application", repo="/src/web", branch="dev", ports=["8080"]
        )
    )
    assert app == {
        "name": "web",
        "kind": "application",
        "git": {"url": "/src/web", "branch": "dev"},
        "ports": [{"port": 8080, "protocol": "http", "public": True}],
    }
    db = service_body(ServiceOptions(name="db", kind="database", engine="postgresql"))
    assert db == {"name": "db", "kind": "database", "engine": "postgresql"}
    cron = service_body(
        ServiceOptions(
            name="nightly",
            kind="cronjob",
            image="busybox",
            schedule="0 3 * * *",
            command="sh -c 'echo hi there'",
        )
    )
    assert cron["schedule"] == "0 3 * * *"
    assert cron["command"] == ["sh", "-c", "echo hi there"]
    job = service_body(ServiceOptions(name="seed", kind="job", image="busybox", triggers=["stop"]))
    assert job["kind"] == "lifecycle" and job["triggers"] == ["stop"]


@pytest.mark.parametrize(
    ("options", "says"),
    [
        (ServiceOptions(name="w", kind="application"), "--repo"),
        (ServiceOptions(name="c", kind="container"), "--image"),
        (ServiceOptions(name="c", kind="container", image="x", repo="y"), "--repo"),
        (ServiceOptions(name="d", kind="database"), "--engine"),
        (ServiceOptions(name="d", kind="database", engine="redis", ports=["1"]), "--port"),
        (ServiceOptions(name="j", kind="cronjob", image="x"), "--schedule"),
        (ServiceOptions(name="x", kind="lambda"), "--kind"),
    ],
)
def test_a_missing_or_foreign_option_is_named(options: ServiceOptions, says: str) -> None:
    with pytest.raises(UsageError, match=says):
        service_body(options)


ROWS = [{"id": "a1", "name": "web", "tags": ["x", "y"], "ok": True, "note": None}]


def test_json_and_yaml_carry_the_objects_as_they_are() -> None:
    assert json.loads(serialized(ROWS, Output.json)) == ROWS
    assert yaml.safe_load(serialized(ROWS, Output.yaml)) == ROWS


def test_a_piped_table_is_tab_separated_without_header() -> None:
    assert tsv(ROWS, ("id", "name", "tags", "ok", "note")) == "a1\tweb\tx, y\tyes\t"
    assert tsv([{"id": "a\tb\nc"}], ("id",)) == "a b c"
    buffer = io.StringIO()
    render(Console(file=buffer), ROWS, Output.table, ("id", "name"))
    assert buffer.getvalue() == "a1\tweb\n"


def test_a_terminal_table_has_a_header() -> None:
    buffer = io.StringIO()
    render(Console(file=buffer, force_terminal=True, width=100), ROWS, Output.table, ("id",))
    assert "ID" in buffer.getvalue() and "a1" in buffer.getvalue()


def test_cells_and_fields() -> None:
    assert cell({"b": 1, "a": 2}) == '{"a":2,"b":1}'
    assert cell(None) == "" and cell(False) == "no" and cell(3) == "3"
    assert fields({"id": "x", "status": "SUCCESS"}, ("id", "status", "absent")) == (
        "id      x\nstatus  SUCCESS"
    )


def test_the_resolved_view_says_where_each_value_comes_from_and_masks_secrets() -> None:
    rows = resolved_rows(
        [
            {"key": "A", "value": "1", "is_secret": False, "source_scope": "environment"},
            {"key": "B", "value": None, "is_secret": True, "source_scope": "service"},
            {
                "key": "C",
                "value": "1",
                "is_secret": False,
                "source_scope": "service",
                "kind": "alias",
                "via": ["A"],
            },
            {
                "key": "SLIPWAY_SERVICE_ID",
                "value": "s",
                "is_secret": False,
                "source_scope": "service",
                "kind": "built_in",
            },
        ]
    )
    assert [(r["key"], r["value"], r["source"]) for r in rows] == [
        ("A", "1", "environment"),
        ("B", SECRET_MASK, "service"),
        ("C", "1", "service via A"),
        ("SLIPWAY_SERVICE_ID", "s", "built-in"),
    ]


def test_each_transition_is_said_once() -> None:
    transitions = Transitions()
    running = {
        "status": "ONGOING",
        "stages": [
            {
                "name": "apps",
                "status": "ONGOING",
                "services": [{"service_id": "s", "name": "web", "status": "BUILDING"}],
            }
        ],
    }
    assert transitions.changes(running) == [  # type: ignore[arg-type]
        "deployment ONGOING",
        "stage apps: ONGOING",
        "  web: BUILDING",
    ]
    assert transitions.changes(running) == []  # type: ignore[arg-type]
    running["stages"][0]["services"][0]["status"] = "DEPLOYED"  # type: ignore[index]
    assert transitions.changes(running) == ["  web: DEPLOYED"]  # type: ignore[arg-type]


def test_the_result_names_why_it_failed_and_where_the_app_answers() -> None:
    failed = {
        "id": "d1",
        "status": "ERROR",
        "stages": [
            {
                "name": "apps",
                "services": [{"name": "web", "reason": "BUILD_FAILED", "message": "no Dockerfile"}],
            }
        ],
    }
    status = {"services": [{"name": "web", "urls": ["http://127.0.0.1:4000"]}]}
    assert result_lines(failed, status) == [  # type: ignore[arg-type]
        "deployment d1 ended: ERROR",
        "  web: BUILD_FAILED: no Dockerfile",
        "  web: http://127.0.0.1:4000",
    ]


def test_set_and_unset_make_a_json_merge_patch() -> None:
    patch = merge_patch(
        ["git.branch=dev", "min_instances=2", 'git.build_args={"A": "1"}', "description=on"],
        ["healthchecks"],
    )
    assert patch == {
        "git": {"branch": "dev", "build_args": {"A": "1"}},
        "min_instances": 2,
        "description": "on",
        "healthchecks": None,
    }
    for sets, unsets in ((["novalue"], []), (["a..b=1"], []), ([], []), (["a=1", "a.b=2"], [])):
        with pytest.raises(UsageError):
            merge_patch(sets, unsets)
