"""The ``slipway`` command line: a client of the gateway's public API, nothing else.

    slipway signup --email you@example.com --name You        (asks for the password)
    slipway login --email you@example.com
    slipway orgs create Acme ; slipway projects create --org ORG Shop
    slipway envs create --project P --org ORG staging
    slipway services create ENV --name web --kind application --repo URL --port 8080
    slipway vars set --env ENV KEY=VALUE [--secret] ; slipway vars list SERVICE --resolved
    slipway deploy ENV --watch ; slipway status ENV ; slipway deployments list ENV
    slipway deployments rollback ENV --to DEPLOYMENT --watch
    slipway webhooks create --org ORG --url URL --event deployment.failed
    slipway logs SERVICE [-f] ; slipway deployments logs DEPLOYMENT [-f]
    slipway events --org ORG [--env ENV] [-o json]           (deployments as they happen)
    slipway plan -f slipway.yaml --org ORG ; slipway apply -f slipway.yaml --org ORG
    slipway export --org ORG --project Shop > slipway.yaml   (a project as code)
    slipway api GET /me                                      (any public route)

Lists and shows take ``--output table|json|yaml``. Failures print ``CODE: message`` on stderr
and exit 1 (2: a usage error; 130: Ctrl-C). ``SLIPWAY_API_URL`` names the gateway (default
http://127.0.0.1:8080); ``SLIPWAY_TOKEN`` an API token to use instead of the saved session (for
CI); ``SLIPWAY_ORG`` the organization of ``webhooks``.
"""

from __future__ import annotations

import json

import httpx
import typer
from rich.table import Table

from slipway_cli.client import call, save_session
from slipway_cli.commands import as_code, environments
from slipway_cli.commands.access import clusters, invitations, roles
from slipway_cli.commands.contexts import context
from slipway_cli.commands.deployments import deployments
from slipway_cli.commands.events import events
from slipway_cli.commands.git_credentials import git_credentials
from slipway_cli.commands.git_webhooks import git_webhooks
from slipway_cli.commands.organizations import members, orgs, projects, tokens
from slipway_cli.commands.services import services
from slipway_cli.commands.variables import variables
from slipway_cli.commands.webhooks import webhooks
from slipway_cli.common import FOLLOW, GREP, Group, api, console, print_logs
from slipway_cli.contexts import api_url
from slipway_cli.inputs import UsageError

app = typer.Typer(
    cls=Group, help="Slipway: deploy your software from the command line.", no_args_is_help=True
)
app.add_typer(orgs, name="orgs")
app.add_typer(projects, name="projects")
app.add_typer(members, name="members")
app.add_typer(tokens, name="tokens")
app.add_typer(clusters, name="clusters")
app.add_typer(invitations, name="invitations")
app.add_typer(roles, name="roles")
app.add_typer(environments.envs, name="envs")
app.add_typer(services, name="services")
app.add_typer(variables, name="vars")
app.add_typer(deployments, name="deployments")
app.add_typer(webhooks, name="webhooks")
app.add_typer(git_webhooks, name="git-webhooks")
app.add_typer(git_credentials, name="git-credentials")
app.add_typer(context, name="context")
# the everyday ones at the top, as `fly deploy` / `fly status`
app.command("deploy", help="Deploy an environment (as `envs deploy`).")(environments.deploy)
app.command("status", help="An environment's status (as `envs status`).")(environments.status)
app.command("events")(events)
# environments as code
app.command("plan")(as_code.plan_command)
app.command("apply")(as_code.apply_command)
app.command("export")(as_code.export_command)


@app.callback()
def main() -> None:
    """Talks to the gateway at $SLIPWAY_API_URL, else the current context's (`slipway context`),
    else http://127.0.0.1:8080."""


@app.command()
def signup(
    email: str = typer.Option(...),
    name: str = typer.Option(...),
    password: str = typer.Option(
        None, prompt=True, hide_input=True, confirmation_prompt=True, help="asked when not given"
    ),
) -> None:
    """Create your account."""
    user = api.signup(email, name, password)
    console.print(f"account created: {user['email']} ({user['id']}); now `slipway login`")


@app.command()
def login(
    email: str = typer.Option(...),
    password: str = typer.Option(None, prompt=True, hide_input=True, help="asked when not given"),
) -> None:
    """Sign in; the session is saved for the next commands (readable by you only)."""
    path = save_session(api.login(email, password))
    console.print(f"signed in to {api_url()} (session saved in {path})")


_TAIL = typer.Option(100, "--tail", "-n", min=0, max=5000, help="Lines from the end first")
_SINCE = typer.Option(None, help="Lines since: 10m, 2h, 1d, or an ISO time")


@app.command("logs")
def logs(
    service: str,
    follow: bool = FOLLOW,
    tail: int = _TAIL,
    since: str = _SINCE,
    grep: str = GREP,
) -> None:
    """A service's live output (stderr in red, the platform's lines in cyan)."""
    print_logs(f"/services/{service}/logs", follow, tail, since, grep)


@app.command("api")
def raw_api(
    method: str, path: str, data: str = typer.Option(None, "--data", "-d", help="JSON body")
) -> None:
    """Call any public route: `slipway api GET /me`."""
    try:
        body = json.loads(data) if data else None
    except ValueError as exc:
        raise UsageError(f"--data is not JSON: {exc}") from None
    console.print_json(json.dumps(call(method.upper(), path, body)))


@app.command()
def health(
    url: str = typer.Option(None, help="Gateway URL (default: $SLIPWAY_API_URL or local)"),
    as_json: bool = typer.Option(False, "--json", help="Print the raw readiness report"),
) -> None:
    """Is the platform ready? Asks the gateway, which asks every service."""
    base = (url or api_url()).rstrip("/")
    try:
        response = httpx.get(f"{base}/readyz", timeout=10)
    except httpx.HTTPError as exc:
        console.print(f"[red]cannot reach {base}: {exc}[/red]")
        raise typer.Exit(2) from exc
    report = response.json()
    if as_json:
        console.print_json(json.dumps(report))
    else:
        table = Table("component", "ready", "detail")
        for name, check in sorted(report.get("checks", {}).items()):
            detail = check.get("error") or check.get("url") or ""
            table.add_row(
                name, "[green]yes[/green]" if check.get("ok") else "[red]no[/red]", detail
            )
        console.print(table)
    raise typer.Exit(0 if response.status_code == 200 else 1)


if __name__ == "__main__":
    app()
