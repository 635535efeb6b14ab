"""``slipway services``: create, list, show and delete the services of an environment."""

from __future__ import annotations

import typer

from slipway_cli.commands.deploying import WATCH, accepted
from slipway_cli.common import OUTPUT, YES, api, confirm, console
from slipway_cli.inputs import KINDS, ServiceOptions, UsageError, merge_patch, service_body
from slipway_cli.output import Output, render, show

services = typer.Typer(help="Services of an environment (every kind).", no_args_is_help=True)

COLUMNS = ("id", "name", "kind", "stage_id")
SHOWN = (
    "id",
    "name",
    "kind",
    "environment_id",
    "git",
    "image",
    "engine",
    "version",
    "ports",
    "schedule",
    "timezone",
    "command",
    "triggers",
    "cpu_millicores",
    "memory_mib",
    "auto_deploy",
    "created_at",
)

_PORTS = typer.Option(None, "--port", help="port it listens on: 8080, 8080/grpc, 8080/tcp")
_TRIGGERS = typer.Option(None, "--trigger", help="job runs on: start|stop|delete; repeat")


@services.command("create")
def create(
    env: str = typer.Argument(..., help="environment id"),
    name: str = typer.Option(..., "--name", help="the service's name (lowercase, -)"),
    kind: str = typer.Option(..., "--kind", help="|".join(KINDS)),
    repo: str = typer.Option(None, help="git URL to build from (application, job)"),
    branch: str = typer.Option(None, help="git branch (default main)"),
    dockerfile: str = typer.Option(None, help="Dockerfile path in the repository"),
    root: str = typer.Option(None, help="directory of the build in the repository"),
    image: str = typer.Option(None, help="image: registry/name:tag or name:tag (container, job)"),
    tag: str = typer.Option(None, help="image tag (instead of :tag in --image)"),
    port: list[str] = _PORTS,
    private: bool = typer.Option(False, help="ports not public (inside the environment only)"),
    engine: str = typer.Option(None, help="database engine: postgresql|mysql|mongodb|redis"),
    version: str = typer.Option(None, help="database version (default: the newest)"),
    schedule: str = typer.Option(None, help="cron job schedule: '*/5 * * * *'"),
    timezone: str = typer.Option(None, help="cron job time zone (IANA, default UTC)"),
    command: str = typer.Option(None, help="command, split as a shell would: 'sh -c \"...\"'"),
    trigger: list[str] = _TRIGGERS,
    output: Output = OUTPUT,
) -> None:
    """Create a service; prints its id (or the service, with -o json|yaml)."""
    body = service_body(
        ServiceOptions(
            name=name,
            kind=kind,
            repo=repo,
            branch=branch,
            dockerfile=dockerfile,
            root=root,
            image=image,
            tag=tag,
            ports=port or [],
            private=private,
            engine=engine,
            version=version,
            schedule=schedule,
            timezone=timezone,
            command=command,
            triggers=trigger or [],
        )
    )
    created = api.create_service(env, body)
    if output is Output.table:
        console.print(created["id"])
    else:
        show(console, created, output, SHOWN)


@services.command("list")
def list_(env: str = typer.Argument(..., help="environment id"), output: Output = OUTPUT) -> None:
    """The environment's services."""
    render(console, api.services(env), output, COLUMNS)


@services.command("show")
def show_(service: str = typer.Argument(..., help="service id"), output: Output = OUTPUT) -> None:
    """One service's configuration."""
    show(console, api.service(service), output, SHOWN)


_SETS = typer.Option(None, "--set", help="path=value (git.branch=dev, min_instances=2); repeat")
_UNSETS = typer.Option(None, "--unset", help="path back to its default; repeat")


@services.command("update")
def update(
    service: str = typer.Argument(..., help="service id"),
    sets: list[str] = _SETS,
    unsets: list[str] = _UNSETS,
    output: Output = OUTPUT,
) -> None:
    """Change a service's configuration (deployed at the next deploy)."""
    updated = api.update_service(service, merge_patch(sets or [], unsets or []))
    if output is Output.table:
        console.print(f"updated {updated['id']}; `slipway deploy {updated['environment_id']}`")
    else:
        show(console, updated, output, SHOWN)


@services.command("delete")
def delete(service: str = typer.Argument(..., help="service id"), yes: bool = YES) -> None:
    """Delete a service (what runs of it is stopped)."""
    confirm(f"delete service {service}?", yes)
    api.delete_service(service)
    console.print(f"deleted {service}")


_ID = typer.Argument(..., help="service id")


@services.command("deploy")
def deploy(
    service: str = _ID,
    commit: str = typer.Option(None, help="deploy this commit (applications, git jobs)"),
    image_tag: str = typer.Option(None, help="deploy this image tag (containers, image jobs)"),
    watch: bool = WATCH,
    output: Output = OUTPUT,
) -> None:
    """Deploy one service (as configured, or at a commit or an image tag)."""
    if commit and image_tag:
        raise UsageError("give --commit or --image-tag, not both")
    version = {"commit": commit} if commit else {"image_tag": image_tag} if image_tag else None
    accepted(api.act_on_service(service, "deploy", version), watch, output)


@services.command("stop")
def stop(service: str = _ID, watch: bool = WATCH, output: Output = OUTPUT) -> None:
    """Stop one service."""
    accepted(api.act_on_service(service, "stop"), watch, output)


@services.command("restart")
def restart(service: str = _ID, watch: bool = WATCH, output: Output = OUTPUT) -> None:
    """Restart one service."""
    accepted(api.act_on_service(service, "restart"), watch, output)


@services.command("status")
def status(service: str = _ID, output: Output = OUTPUT) -> None:
    """One service's state, running status, freshness and URLs."""
    names = ("name", "kind", "state", "status", "running_status", "freshness", "urls", "message")
    show(console, api.service_status(service), output, names)


RUN_COLUMNS = ("run_id", "trigger", "status", "exit_code", "created_at", "message")


@services.command("run")
def run(service: str = _ID, output: Output = OUTPUT) -> None:
    """Run a deployed cron or lifecycle job now."""
    show(console, api.run_job(service), output, RUN_COLUMNS)


@services.command("runs")
def runs(service: str = _ID, output: Output = OUTPUT) -> None:
    """A job's runs, scheduled and manual, newest first."""
    render(console, api.job_runs(service), output, RUN_COLUMNS)
