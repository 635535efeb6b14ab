"""``slipway plan|apply|export``: a project as a ``slipway.yaml`` file (environments, services,
variables; secrets by reference to an environment variable, never their value).

    slipway plan -f slipway.yaml --org ORG       what would change (exit 0; -o json for scripts)
    slipway apply -f slipway.yaml --org ORG -y   make it so (a second apply changes nothing)
    slipway export --org ORG --project Shop      the file of an existing project (stdout or -f)
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer
import yaml
from pydantic import ValidationError

from slipway_cli.blueprint import apply as applying
from slipway_cli.blueprint import state
from slipway_cli.blueprint.export import export as exported
from slipway_cli.blueprint.plan import Plan, PlanError, plan
from slipway_cli.common import ORG, YES, api, confirm, console, errors
from slipway_cli.inputs import UsageError
from slipway_cli.output import Output
from slipway_contracts.slipway_file import SlipwayFile

_FILE = typer.Option(Path("slipway.yaml"), "--file", "-f", help="the project's file")
_PRUNE = typer.Option(
    False, "--prune", help="also delete the services and variables the file does not name"
)
_PROJECT = typer.Option(..., "--project", help="the project's name")
_TO = typer.Option(None, "--file", "-f", help="write here (default: stdout)")
_OUTPUT = typer.Option(Output.table, "--output", "-o", case_sensitive=False, help="table or json")


def load(path: Path) -> SlipwayFile:
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"{path} is not YAML: {exc}") from None
    try:
        return SlipwayFile.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(file)'}: {e['msg']}" for e in exc.errors()
        )
        raise UsageError(f"{path} is not a valid slipway.yaml: {problems}") from None


def _planned(path: Path, org: str, prune: bool) -> tuple[Plan, state.Project | None]:
    wanted = load(path)
    current = state.read_project(api, org, wanted.project)
    try:
        return plan(wanted, current, state.clusters(api, org), prune=prune), current
    except PlanError as exc:
        raise UsageError(str(exc)) from None


def _show(planned: Plan, output: Output) -> None:
    if output is Output.json:
        changes = [
            {k: v for k, v in asdict(c).items() if v not in (None, {})}
            | {"description": c.describe()}
            for c in planned.changes
        ]
        console.print_json(json.dumps({"changes": changes, "unchanged": planned.unchanged}))
        return
    for change in planned.changes:
        console.print(change.describe(), markup=False, highlight=False)
    for kept in planned.kept:
        console.print(f"  {kept}: not in the file, kept", markup=False, highlight=False)
    console.print(
        "no changes; " + planned.summary() if not planned.changes else planned.summary(),
        markup=False,
        highlight=False,
    )


def plan_command(
    file: Path = _FILE, org: str = ORG, prune: bool = _PRUNE, output: Output = _OUTPUT
) -> None:
    """What would change in the project to make it what the file says (nothing is changed)."""
    planned, _ = _planned(file, org, prune)
    _show(planned, output)


def apply_command(
    file: Path = _FILE, org: str = ORG, prune: bool = _PRUNE, yes: bool = YES
) -> None:
    """Make the project what the file says: the plan, then each change as it is made."""
    planned, current = _planned(file, org, prune)
    _show(planned, Output.table)
    if not planned.changes:
        return
    applying.secret_values(planned)  # all there before anything is asked or changed
    confirm(f"Apply these {len(planned.changes)} changes?", yes)
    applying.apply(
        planned,
        current,
        org=org,
        say=lambda text: errors.print(f"done: {text}", markup=False, highlight=False),
    )
    console.print(f"applied: {planned.summary()}", markup=False, highlight=False)


def export_command(
    org: str = ORG,
    project: str = _PROJECT,
    file: Path = _TO,
) -> None:
    """The slipway.yaml of an existing project (secrets by name, never their values)."""
    found = state.read_project(api, org, project)
    if found is None:
        raise UsageError(f"no project named {project!r} in the organization")
    document: dict[str, Any] = exported(found, state.clusters(api, org))
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    if file is None:
        console.print(text.rstrip("\n"), markup=False, highlight=False, soft_wrap=True)
    else:
        file.write_text(text)
        errors.print(f"wrote {file}")
