"""Requests that start a deployment, and ``--watch``: shared by ``envs`` and ``deployments``."""

from __future__ import annotations

import typer

from slipway_cli import watch as watching
from slipway_cli.api import Accepted, EnvironmentStatus
from slipway_cli.client import ApiError
from slipway_cli.common import api, console, errors, show_line
from slipway_cli.output import Output, plain, serialized

WATCH = typer.Option(False, "--watch", "-w", help="Follow it to its end (exit 1: it failed)")


def accepted(request: Accepted, watch: bool, output: Output) -> None:
    """What a deploy/stop/... request answered; with ``watch``, followed to the end."""
    deployment = request["deployment_id"]
    merged = " (merged into the pending one)" if request.get("merged") else ""
    if not watch:
        if output is Output.table:
            console.print(f"{request.get('action')} queued: deployment {deployment}{merged}")
        else:
            plain(console, serialized(dict(request), output))
        return
    # with -o json|yaml stdout is the final deployment alone: the live lines go to stderr
    live = console if output is Output.table else errors
    try:  # from the first line on, Ctrl-C stops the watch (and says so), not the deployment
        errors.print(f"{request.get('action')} queued: deployment {deployment}{merged}")
        ended = watching.watch(
            api,
            deployment,
            show_line=show_line if live is console else _to_stderr,
            say=lambda text: live.print(text, markup=False, highlight=False),
            environment_id=request.get("environment_id"),
        )
    except KeyboardInterrupt:
        errors.print(f"\nstopped watching; it goes on: slipway deployments show {deployment}")
        raise typer.Exit(130) from None
    status = _status_or_none(ended.get("environment_id", request.get("environment_id", "")))
    if output is Output.table:
        for line in watching.result_lines(ended, status):
            console.print(line, markup=False, highlight=False)
    else:
        for line in watching.result_lines(ended, status):
            errors.print(line, markup=False, highlight=False)
        plain(console, serialized(dict(ended), output))
    raise typer.Exit(0 if watching.ended_ok(ended) else 1)


def _to_stderr(line: dict[str, object]) -> None:
    errors.print(str(line.get("text", "")), markup=False, highlight=False, soft_wrap=True)


def _status_or_none(env: str) -> EnvironmentStatus | None:
    try:
        return api.status(env)
    except ApiError:
        return None  # the result is known; the URLs are a courtesy
