"""``slipway git-webhooks``: endpoints that GitHub, GitLab or Gitea deliver pushes and pull
requests to (a push deploys the matching applications), and what each delivery triggered."""

from __future__ import annotations

import typer

from slipway_cli.common import ORG, OUTPUT, YES, api, confirm, console, errors
from slipway_cli.contexts import api_url
from slipway_cli.output import Output, plain, render, serialized, show

git_webhooks = typer.Typer(
    help="Git webhook endpoints of an organization (push to deploy).", no_args_is_help=True
)
_ID = typer.Argument(..., help="git webhook id")
SHOWN = ("id", "description", "path", "created_at")


@git_webhooks.command("list")
def list_(org: str = ORG, output: Output = OUTPUT) -> None:
    """The organization's endpoints (never their secrets)."""
    render(console, api.git_webhooks(org), output, ("id", "path", "description"))


@git_webhooks.command("create")
def create(
    description: str = typer.Option("", help="what it is for"),
    org: str = ORG,
    output: Output = OUTPUT,
) -> None:
    """Create an endpoint: give its URL and secret (shown this once) to the git provider."""
    created = api.create_git_webhook(org, description)
    if output is not Output.table:
        plain(console, serialized(dict(created), output))
        return
    console.print(created["id"])
    base = api_url().removesuffix("/api/v1")
    errors.print(f"payload URL: {base}{created.get('path', '')}", markup=False, highlight=False)
    errors.print("secret (shown once, keep it):", highlight=False)
    errors.print(created.get("secret", ""), markup=False, highlight=False)


@git_webhooks.command("show")
def show_(hook: str = _ID, org: str = ORG, output: Output = OUTPUT) -> None:
    """One endpoint (never its secret)."""
    show(console, api.git_webhook(org, hook), output, SHOWN)


@git_webhooks.command("delete")
def delete(hook: str = _ID, org: str = ORG, yes: bool = YES) -> None:
    """Delete an endpoint (its deliveries are refused from then on)."""
    confirm(f"delete git webhook {hook}?", yes)
    api.delete_git_webhook(org, hook)
    console.print(f"deleted {hook}")


@git_webhooks.command("deliveries")
def deliveries(hook: str = _ID, org: str = ORG, output: Output = OUTPUT) -> None:
    """Its deliveries, newest first: provider, event, branch, commit, result, what it triggered."""
    columns = ("id", "provider", "event", "branch", "commit", "result", "triggered")
    render(console, api.git_deliveries(org, hook), output, columns)
