"""``slipway orgs``, ``projects``, ``members``, ``tokens``: who works where."""

from __future__ import annotations

import typer

from slipway_cli.common import ORG, OUTPUT, YES, api, confirm, console, errors
from slipway_cli.output import Output, plain, render, serialized

orgs = typer.Typer(help="Organizations.", no_args_is_help=True)
projects = typer.Typer(help="Projects.", no_args_is_help=True)
members = typer.Typer(help="Members of an organization.", no_args_is_help=True)
tokens = typer.Typer(help="API tokens of an organization (for CI).", no_args_is_help=True)
_ORG_OPTION = typer.Option(..., "--org", help="organization id")


@orgs.command("list")
def orgs_list(output: Output = OUTPUT) -> None:
    """Your organizations and your role in each."""
    render(console, api.organizations(), output, ("id", "name", "role"))


@orgs.command("create")
def orgs_create(name: str) -> None:
    """Create an organization (you own it); prints its id."""
    console.print(api.create_organization(name)["id"])


@projects.command("list")
def projects_list(org: str = _ORG_OPTION, output: Output = OUTPUT) -> None:
    """The organization's projects."""
    render(console, api.projects(org), output, ("id", "name"))


@projects.command("create")
def projects_create(name: str, org: str = _ORG_OPTION) -> None:
    """Create a project; prints its id."""
    console.print(api.create_project(org, name)["id"])


@members.command("list")
def members_list(org: str = ORG, output: Output = OUTPUT) -> None:
    """Members and their roles."""
    render(console, api.members(org), output, ("user_id", "email", "name", "role"))


@members.command("invite")
def members_invite(
    email: str,
    role: str = typer.Option(..., help="owner|admin|devops|viewer|billing or a custom role"),
    org: str = ORG,
) -> None:
    """Invite someone by email with a role."""
    api.invite(org, email, role)
    console.print(f"invited {email} as {role}")


@members.command("remove")
def members_remove(user: str, org: str = ORG, yes: bool = YES) -> None:
    """Remove a member (by user id)."""
    confirm(f"remove {user} from the organization?", yes)
    api.remove_member(org, user)
    console.print(f"removed {user}")


@tokens.command("list")
def tokens_list(org: str = ORG, output: Output = OUTPUT) -> None:
    """API tokens (never the tokens themselves)."""
    render(console, api.api_tokens(org), output, ("id", "name", "role", "prefix", "last_used_at"))


@tokens.command("create")
def tokens_create(
    name: str,
    role: str = typer.Option(..., help="the token's role"),
    org: str = ORG,
    output: Output = OUTPUT,
) -> None:
    """Create an API token; the token is printed this once (use it as $SLIPWAY_TOKEN)."""
    created = api.create_api_token(org, name, role)
    if output is not Output.table:
        plain(console, serialized(created, output))
        return
    errors.print(f"token {created.get('id')} (shown once, keep it):", highlight=False)
    plain(console, str(created.get("token", "")))


@tokens.command("delete")
def tokens_delete(token: str, org: str = ORG, yes: bool = YES) -> None:
    """Revoke an API token (by id)."""
    confirm(f"revoke API token {token}?", yes)
    api.delete_api_token(org, token)
    console.print(f"revoked {token}")
