"""``slipway deployments``: history, one deployment, cancel, rollback, logs, watch."""

from __future__ import annotations

import typer

from slipway_cli import watch as watching
from slipway_cli.api import Accepted, Deployment
from slipway_cli.client import ApiError
from slipway_cli.commands.deploying import WATCH, accepted
from slipway_cli.common import FOLLOW, GREP, OUTPUT, api, console, print_logs
from slipway_cli.output import Output, fields, plain, render, serialized

deployments = typer.Typer(help="Deployments.", no_args_is_help=True)

COLUMNS = ("id", "action", "status", "trigger", "created_at", "duration_s")
_ID = typer.Argument(..., help="deployment id")


@deployments.command("list")
def list_(
    env: str = typer.Argument(..., help="environment id"),
    limit: int = typer.Option(20, min=1, max=100, help="how many, newest first"),
    output: Output = OUTPUT,
) -> None:
    """The environment's deployments, newest first."""
    render(console, api.deployments(env, limit), output, COLUMNS)


def deployment_text(deployment: Deployment) -> str:
    names = (*COLUMNS[:4], "rollback_of", "reason", "message", "created_at", "duration_s")
    lines = [fields(dict(deployment), names)]
    for stage in deployment.get("stages", []):
        lines.append(f"stage {stage.get('name')}: {stage.get('status')}")
        for run in stage.get("services", []):
            detail = " ".join(
                str(run[k]) for k in ("image", "commit", "reason", "message") if run.get(k)
            )
            lines.append(f"  {run.get('name')}: {run.get('status')} {detail}".rstrip())
    return "\n".join(lines)


@deployments.command("show")
def show_(deployment: str = _ID, output: Output = OUTPUT) -> None:
    """One deployment: stages, services, images, commits, durations."""
    found = api.deployment(deployment)
    text = deployment_text(found) if output is Output.table else serialized(dict(found), output)
    plain(console, text)


@deployments.command("cancel")
def cancel(deployment: str = _ID, output: Output = OUTPUT) -> None:
    """Cancel a deployment: the running one, or the next queued one."""
    found = api.deployment(deployment)
    if found.get("status") in watching.FINAL:
        raise ApiError(409, "NOT_CANCELABLE", f"deployment {deployment} already ended")
    env = found["environment_id"]
    status = api.status(env)
    before = _runs_before(deployment, found, status.get("deployment_id"), status.get("queued", []))
    if before:
        raise ApiError(409, "NOT_CANCELABLE", f"{before} comes first: cancel it first")
    accepted(api.act(env, "cancel"), False, output)


def _runs_before(
    deployment: str, found: Deployment, current: str | None, queued: list[str]
) -> str | None:
    """What the environment's cancel would cancel instead of this deployment (only the
    running one, else the first queued, can be canceled)."""
    if found.get("status") != "QUEUED":
        return None  # it is the one running
    running = current and current != deployment
    if running and api.deployment(str(current)).get("status") not in watching.FINAL:
        return f"deployment {current} runs"
    if queued and queued[0] != deployment:
        return f"deployment {queued[0]} is queued before it"
    return None


@deployments.command("rollback")
def rollback(
    env: str = typer.Argument(..., help="environment id"),
    to: str = typer.Option(..., "--to", help="the deployment whose snapshot to deploy again"),
    watch: bool = WATCH,
    output: Output = OUTPUT,
) -> None:
    """Deploy an earlier deployment's snapshot again (nothing is built)."""
    target = api.deployment(to)
    if target.get("environment_id") != env:
        raise ApiError(422, "NOT_THIS_ENVIRONMENT", f"deployment {to} is not of environment {env}")
    accepted(api.rollback(to), watch, output)


@deployments.command("watch")
def watch(deployment: str = _ID, output: Output = OUTPUT) -> None:
    """Follow a deployment to its end: transitions, logs, result, URLs (exit 1: it failed)."""
    found = api.deployment(deployment)
    request = Accepted(
        deployment_id=deployment,
        environment_id=found.get("environment_id", ""),
        action=found.get("action", ""),
    )
    accepted(request, True, output)


@deployments.command("logs")
def logs(
    deployment: str = _ID,
    follow: bool = FOLLOW,
    tail: int = typer.Option(5000, "--tail", "-n", min=0, max=5000),
    grep: str = GREP,
) -> None:
    """A deployment's build and deploy lines; with -f until it ends (exit 0: it succeeded)."""
    print_logs(f"/deployments/{deployment}/logs", follow, tail, None, grep)
