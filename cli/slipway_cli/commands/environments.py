"""``slipway envs``: environments — create, clone, delete, deploy and friends, status."""

from __future__ import annotations

from typing import Any

import typer

from slipway_cli.commands.deploying import WATCH, accepted
from slipway_cli.common import OUTPUT, YES, api, confirm, console
from slipway_cli.inputs import UsageError
from slipway_cli.output import Output, fields, plain, render, serialized, show

envs = typer.Typer(help="Environments.", no_args_is_help=True)

_ENV = typer.Argument(..., help="environment id")
SERVICE_COLUMNS = ("name", "kind", "state", "running_status", "freshness", "urls")


@envs.command("list")
def list_(project: str = typer.Option(..., help="project id"), output: Output = OUTPUT) -> None:
    """The project's environments."""
    render(console, api.environments(project), output, ("id", "name", "mode", "cluster_id"))


@envs.command("create")
def create(
    name: str,
    project: str = typer.Option(..., help="project id"),
    mode: str = typer.Option("development", help="production|staging|development"),
    cluster: str = typer.Option(None, help="cluster id (default: the local one)"),
    org: str = typer.Option(None, help="organization id, to find the local cluster"),
) -> None:
    """Create an environment; prints its id."""
    if cluster is None:
        if org is None:
            raise UsageError("give --cluster, or --org to use the organization's local cluster")
        cluster = next(c["id"] for c in api.clusters(org) if c["kind"] == "local")
    console.print(api.create_environment(project, name, mode, cluster)["id"])


@envs.command("show")
def show_(env: str = _ENV, output: Output = OUTPUT) -> None:
    """One environment's configuration."""
    show(console, api.environment(env), output, ("id", "name", "mode", "cluster_id", "project_id"))


@envs.command("clone")
def clone(
    env: str = _ENV,
    name: str = typer.Option(..., "--name", help="the new environment's name"),
    mode: str = typer.Option(None, help="its mode (default: the same)"),
    cluster: str = typer.Option(None, help="its cluster (default: the same)"),
) -> None:
    """Copy an environment: services, stages, rule and variables (secrets too); prints the id."""
    console.print(api.clone_environment(env, name, mode, cluster)["id"])


@envs.command("delete")
def delete(
    env: str = _ENV,
    keep_config: bool = typer.Option(
        False, help="delete only what runs (and its data); the configuration stays"
    ),
    watch: bool = WATCH,
    yes: bool = YES,
    output: Output = OUTPUT,
) -> None:
    """Delete an environment and its services (what runs of it is stopped)."""
    if keep_config:
        confirm(f"delete what runs of environment {env}, databases' data included?", yes)
        accepted(api.act(env, "delete"), watch, output)
        return
    confirm(f"delete environment {env} and everything in it?", yes)
    api.delete_environment(env)
    console.print(f"deleted {env}")


@envs.command("deploy")
def deploy(env: str = _ENV, watch: bool = WATCH, output: Output = OUTPUT) -> None:
    """Deploy the environment as configured now."""
    accepted(api.act(env, "deploy"), watch, output)


@envs.command("redeploy")
def redeploy(env: str = _ENV, watch: bool = WATCH, output: Output = OUTPUT) -> None:
    """Deploy again what the last successful deployment deployed."""
    accepted(api.act(env, "redeploy"), watch, output)


@envs.command("stop")
def stop(env: str = _ENV, watch: bool = WATCH, output: Output = OUTPUT) -> None:
    """Stop what runs (configuration and data stay)."""
    accepted(api.act(env, "stop"), watch, output)


@envs.command("restart")
def restart(env: str = _ENV, watch: bool = WATCH, output: Output = OUTPUT) -> None:
    """Restart what runs."""
    accepted(api.act(env, "restart"), watch, output)


@envs.command("cancel")
def cancel(env: str = _ENV, output: Output = OUTPUT) -> None:
    """Cancel the running (else the next queued) deployment."""
    accepted(api.act(env, "cancel"), False, output)


def status_text(status: dict[str, Any]) -> str:
    head = fields(status, ("state", "status", "action", "freshness", "deployment_id", "queued"))
    stages = [f"  {s.get('name')}: {s.get('status')}" for s in status.get("stages", [])]
    return "\n".join([head, *(["stages:", *stages] if stages else [])])


@envs.command("status")
def status(env: str = _ENV, output: Output = OUTPUT) -> None:
    """State, freshness, the current deployment's stages, each service's status and URLs."""
    answer = api.status(env)
    if output is not Output.table:
        plain(console, serialized(dict(answer), output))
        return
    console.print(status_text(dict(answer)), markup=False, highlight=False)
    render(console, answer.get("services", []), output, SERVICE_COLUMNS)


@envs.command("schedule")
def schedule(env: str = _ENV, output: Output = OUTPUT) -> None:
    """When the deployment rule next stops and starts it; its cron jobs' next runs."""
    answer = api.schedule(env)
    if output is not Output.table:
        plain(console, serialized(answer, output))
        return
    names = ("auto_stop", "auto_start", "timezone", "weekdays", "next_stop_at", "next_start_at")
    console.print(fields(answer, names), markup=False, highlight=False)
    jobs = answer.get("jobs", [])
    if jobs:
        render(console, jobs, output, ("service_id", "schedule", "timezone", "next_run_at"))
