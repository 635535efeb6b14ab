"""``slipway vars``: variables and secrets of a project, an environment or a service.

The target is named by ``--service``, ``--env`` or ``--project``; ``list`` also takes a bare id
and finds out what it names (a service first, then an environment, then a project). Secrets are
write-only: they are listed masked, and ``--resolved`` shows where each value a service receives
comes from.
"""

from __future__ import annotations

from typing import Any

import typer

from slipway_cli.api import ResolvedVariable, Variable
from slipway_cli.client import ApiError
from slipway_cli.common import OUTPUT, api, console, errors
from slipway_cli.inputs import UsageError, assignment
from slipway_cli.output import SECRET_MASK, Output, render

variables = typer.Typer(help="Variables and secrets.", no_args_is_help=True)

_SERVICE = typer.Option(None, "--service", "-s", help="service id")
_ENV = typer.Option(None, "--env", "-e", help="environment id")
_PROJECT = typer.Option(None, "--project", "-p", help="project id")
_ASSIGNMENTS = typer.Argument(..., help="KEY=VALUE, one or more")
_KEYS = typer.Argument(..., help="KEY, one or more")


def scope_of(service: str | None, env: str | None, project: str | None) -> tuple[str, str]:
    """``(scope, parent id)`` from the one flag given."""
    given = [(s, v) for s, v in (("service", service), ("environment", env), ("project", project))]
    chosen = [(s, v) for s, v in given if v]
    if len(chosen) != 1:
        raise UsageError("name one target: --service, --env or --project")
    return chosen[0]


def _detect(target: str) -> tuple[str, str]:
    """What a bare id names: a service, an environment or a project."""
    for scope, read in (
        ("service", api.service),
        ("environment", api.environment),
    ):
        try:
            read(target)
            return scope, target
        except ApiError as exc:
            if exc.status != 404:
                raise
    return "project", target


def plain_rows(items: list[Variable]) -> list[dict[str, Any]]:
    return [
        {**item, "value": SECRET_MASK if item.get("is_secret") else item.get("value", "")}
        for item in items
    ]


def resolved_rows(items: list[ResolvedVariable]) -> list[dict[str, Any]]:
    """Each value the service receives and where it comes from (secrets masked)."""
    rows = []
    for item in items:
        source = item.get("source_scope", "")
        if item.get("kind") == "built_in":
            source = "built-in"
        elif item.get("via"):
            source += " via " + ", ".join(item.get("via", []))
        value = SECRET_MASK if item.get("is_secret") else item.get("value")
        rows.append({**item, "value": value, "source": source})
    return rows


@variables.command("list")
def list_(
    target: str = typer.Argument(None, help="a service, environment or project id"),
    service: str = _SERVICE,
    env: str = _ENV,
    project: str = _PROJECT,
    resolved: bool = typer.Option(
        False, help="every variable the service receives, and where each comes from"
    ),
    output: Output = OUTPUT,
) -> None:
    """Variables of one scope (secrets masked); --resolved: what a service receives."""
    scope, parent = _detect(target) if target else scope_of(service, env, project)
    if resolved:
        if scope != "service":
            raise UsageError("--resolved is what a service receives: name a service")
        items = api.resolved(parent)
        render(
            console, items, output, ("key", "value", "source", "kind"), rows=resolved_rows(items)
        )
        return
    found = api.variables(scope, parent)
    render(
        console, found, output, ("key", "value", "kind", "is_secret", "id"), rows=plain_rows(found)
    )


@variables.command("set")
def set_(
    assignments: list[str] = _ASSIGNMENTS,
    service: str = _SERVICE,
    env: str = _ENV,
    project: str = _PROJECT,
    secret: bool = typer.Option(False, "--secret", help="write-only: never shown again"),
    file: str = typer.Option(None, "--file", help="deliver as a file at this path"),
) -> None:
    """Create or change variables (a key set again gets the new value)."""
    scope, parent = scope_of(service, env, project)
    pairs = [assignment(text) for text in assignments]
    existing = {v["key"]: v for v in api.variables(scope, parent)}
    for key, value in pairs:
        current = existing.get(key)
        if current is None:
            body: dict[str, Any] = {
                "scope": scope,
                "parent_id": parent,
                "key": key,
                "value": value,
                "is_secret": secret,
            }
            if file:
                body |= {"kind": "file", "mount_path": file}
            api.create_variable(body)
            console.print(f"set {key}" + (" (secret)" if secret else ""))
        elif bool(current.get("is_secret")) != secret:
            kind = "a secret" if current.get("is_secret") else "not a secret"
            errors.print(f"{key} exists and is {kind}: `slipway vars unset {key}` first")
            raise typer.Exit(1)
        else:
            api.update_variable(current["id"], value)
            console.print(f"updated {key}")


@variables.command("unset")
def unset(
    keys: list[str] = _KEYS,
    service: str = _SERVICE,
    env: str = _ENV,
    project: str = _PROJECT,
) -> None:
    """Delete variables of one scope."""
    scope, parent = scope_of(service, env, project)
    existing = {v["key"]: v for v in api.variables(scope, parent)}
    missing = [k for k in keys if k not in existing]
    if missing:
        errors.print(f"VARIABLE_NOT_FOUND: no {', '.join(missing)} at {scope} scope")
        raise typer.Exit(1)
    for key in keys:
        api.delete_variable(existing[key]["id"])
        console.print(f"unset {key}")
