"""``slipway webhooks``: the organization's outgoing webhooks and their deliveries."""

from __future__ import annotations

from typing import Any

import typer

from slipway_cli.common import ORG, OUTPUT, YES, api, confirm, console, errors
from slipway_cli.output import Output, plain, render, serialized, show

webhooks = typer.Typer(help="Outgoing webhooks of an organization.", no_args_is_help=True)

EVENTS = (
    "deployment.queued",
    "deployment.started",
    "deployment.succeeded",
    "deployment.failed",
    "deployment.canceled",
    "environment.stopped",
)
COLUMNS = ("id", "url", "events", "format", "description")
SHOWN = ("id", "url", "events", "project_pattern", "environment_modes", "format", "created_at")
_EVENTS = typer.Option(..., "--event", help="|".join(EVENTS) + "; repeat")
_MODES = typer.Option(None, "--mode", help="only environments of this mode; repeat")
_ID = typer.Argument(..., help="webhook id")


@webhooks.command("list")
def list_(org: str = ORG, output: Output = OUTPUT) -> None:
    """The organization's webhooks (never their secrets)."""
    render(console, api.webhooks(org), output, COLUMNS)


@webhooks.command("create")
def create(
    url: str = typer.Option(..., "--url", help="where to POST the events"),
    event: list[str] = _EVENTS,
    project_pattern: str = typer.Option(None, help="only projects whose name matches (glob)"),
    mode: list[str] = _MODES,
    format_: str = typer.Option("json", "--format", help="json|slack"),
    description: str = typer.Option("", help="what it is for"),
    org: str = ORG,
    output: Output = OUTPUT,
) -> None:
    """Create a webhook; its signing secret is shown this once."""
    body: dict[str, Any] = {
        "url": url,
        "events": event,
        "environment_modes": mode or [],
        "format": format_,
        "description": description,
    }
    if project_pattern:
        body["project_pattern"] = project_pattern
    created = api.create_webhook(org, body)
    if output is not Output.table:
        plain(console, serialized(dict(created), output))
        return
    console.print(created["id"])
    errors.print("signing secret (shown once, keep it):", highlight=False)
    errors.print(created.get("secret", ""), markup=False, highlight=False)


@webhooks.command("show")
def show_(webhook: str = _ID, org: str = ORG, output: Output = OUTPUT) -> None:
    """One webhook (never its secret)."""
    show(console, api.webhook(org, webhook), output, SHOWN)


@webhooks.command("delete")
def delete(webhook: str = _ID, org: str = ORG, yes: bool = YES) -> None:
    """Delete a webhook (nothing more is sent to it)."""
    confirm(f"delete webhook {webhook}?", yes)
    api.delete_webhook(org, webhook)
    console.print(f"deleted {webhook}")


@webhooks.command("deliveries")
def deliveries(webhook: str = _ID, org: str = ORG, output: Output = OUTPUT) -> None:
    """Its deliveries, newest first: event, status, attempts, last response, next attempt."""
    columns = ("id", "event", "status", "attempts", "last_response_code", "next_attempt_at")
    render(console, api.deliveries(org, webhook), output, columns)


@webhooks.command("redeliver")
def redeliver(
    webhook: str = _ID,
    delivery: str = typer.Argument(..., help="delivery id"),
    org: str = ORG,
) -> None:
    """Send a delivery again, now."""
    api.redeliver(org, webhook, delivery)
    console.print(f"redelivery of {delivery} queued")
