"""``slipway events``: tail the organization's deployment and status events as they happen.

Only the environments the caller may read are in the stream (the gateway filters it). A person
gets one line per event; ``-o json`` one JSON object per line (with ``event_id``, the id to
resume after with ``--after``), for scripts; ``--no-follow`` prints what is there after
``--after`` and ends. Ctrl-C ends the tail (exit 0).
"""

from __future__ import annotations

import json
from typing import Any

import typer

from slipway_cli import events as event_stream
from slipway_cli.common import ORG, OUTPUT, console, note
from slipway_cli.inputs import UsageError
from slipway_cli.output import Output

_ENV = typer.Option(None, "--env", help="only this environment; repeat")
_DEPLOYMENT = typer.Option(None, "--deployment", help="only this deployment")
_AFTER = typer.Option(None, "--after", help="resume after this event id")
_NO_FOLLOW = typer.Option(False, "--no-follow", help="print what is there after --after, then end")


def events(
    org: str = ORG,
    env: list[str] = _ENV,
    deployment: str = _DEPLOYMENT,
    after: str = _AFTER,
    no_follow: bool = _NO_FOLLOW,
    output: Output = OUTPUT,
) -> None:
    """Tail the organization's deployment and status events (those you may see)."""
    if output is Output.yaml:
        raise UsageError("events are printed as table lines or JSON lines (-o json)")
    if no_follow and not after:
        raise UsageError("--no-follow needs --after (the events after an id)")
    wanted_envs = set(env or ())
    stream = event_stream.follow(org, last_event_id=after, until_caught_up=no_follow, note=note)
    try:
        for event in stream:
            data = event.data
            if wanted_envs and data.get("environment_id") not in wanted_envs:
                continue
            if deployment and data.get("deployment_id") != deployment:
                continue
            _print(event, output)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


def _print(event: event_stream.Event, output: Output) -> None:
    if output is Output.json:
        line: dict[str, Any] = {"event_id": event.id, **event.data}
        console.print(json.dumps(line), markup=False, highlight=False, soft_wrap=True)
        return
    data = event.data
    at = str(data.get("occurred_at", ""))[11:19]
    env = str(data.get("environment_id", ""))[:8]
    deployment = str(data.get("deployment_id") or "")[:8]
    text = event_stream.describe(event).strip()
    console.print(f"{at}  env {env}  {deployment:8}  {text}", markup=False, highlight=False)
