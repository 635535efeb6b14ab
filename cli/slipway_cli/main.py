"""The ``slipway`` command line: a client of the gateway's public API, nothing else.

    slipway signup --email you@example.com --name You        (asks for the password)
    slipway login --email you@example.com
    slipway orgs create Acme ; slipway orgs list
    slipway projects create --org ORG Shop ; slipway envs create --project P staging ...
    slipway logs SERVICE [-f] [--tail 100] [--since 10m] [--grep TEXT]
    slipway deployments logs DEPLOYMENT [-f]                 (-f: until the deployment ends)
    slipway api GET /me                                      (any public route)

``SLIPWAY_API_URL`` names the gateway (default http://127.0.0.1:8080); ``SLIPWAY_TOKEN`` an API
token to use instead of the saved session (for CI).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from slipway_cli import logs as log_lines
from slipway_cli.client import ApiError, api_url, call, save_session

app = typer.Typer(help="Slipway: deploy your software from the command line.", no_args_is_help=True)
orgs = typer.Typer(help="Organizations.", no_args_is_help=True)
projects = typer.Typer(help="Projects.", no_args_is_help=True)
envs = typer.Typer(help="Environments.", no_args_is_help=True)
app.add_typer(orgs, name="orgs")
app.add_typer(projects, name="projects")
app.add_typer(envs, name="envs")
deployments = typer.Typer(help="Deployments.", no_args_is_help=True)
app.add_typer(deployments, name="deployments")
console = Console()
errors = Console(stderr=True)


@app.callback()
def main() -> None:
    """Talks to the gateway at $SLIPWAY_API_URL (default http://127.0.0.1:8080)."""


def _run(
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    params: dict[str, str] | None = None,
    *,
    auth: bool = True,
) -> Any:
    try:
        return call(method, path, body, params, auth=auth)
    except ApiError as exc:
        errors.print(f"[red]{exc.code}[/red]: {exc.message}")
        raise typer.Exit(2 if exc.status == 0 else 1) from None


def _table(items: list[dict[str, Any]], *columns: str) -> None:
    table = Table(*columns)
    for item in items:
        table.add_row(*(str(item.get(c, "")) for c in columns))
    console.print(table)


@app.command()
def signup(
    email: str = typer.Option(...),
    name: str = typer.Option(...),
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True),
) -> None:
    """Create your account."""
    user = _run(
        "POST", "/auth/signup", {"email": email, "name": name, "password": password}, auth=False
    )
    console.print(f"account created: {user['email']} ({user['id']}); now `slipway login`")


@app.command()
def login(
    email: str = typer.Option(...), password: str = typer.Option(..., prompt=True, hide_input=True)
) -> None:
    """Sign in; the session is saved for the next commands (readable by you only)."""
    tokens = _run("POST", "/auth/login", {"email": email, "password": password}, auth=False)
    path = save_session(tokens)
    console.print(f"signed in to {api_url()} (session saved in {path})")


@orgs.command("list")
def orgs_list() -> None:
    _table(_run("GET", "/organizations")["items"], "id", "name", "role")


@orgs.command("create")
def orgs_create(name: str) -> None:
    org = _run("POST", "/organizations", {"name": name})
    console.print(org["id"])


@projects.command("list")
def projects_list(org: str = typer.Option(..., help="organization id")) -> None:
    _table(_run("GET", f"/organizations/{org}/projects")["items"], "id", "name")


@projects.command("create")
def projects_create(name: str, org: str = typer.Option(..., help="organization id")) -> None:
    console.print(_run("POST", f"/organizations/{org}/projects", {"name": name})["id"])


@envs.command("list")
def envs_list(project: str = typer.Option(..., help="project id")) -> None:
    _table(
        _run("GET", f"/projects/{project}/environments")["items"],
        "id",
        "name",
        "mode",
        "cluster_id",
    )


@envs.command("create")
def envs_create(
    name: str,
    project: str = typer.Option(..., help="project id"),
    mode: str = typer.Option("development"),
    cluster: str = typer.Option(None, help="cluster id (default: the local one)"),
    org: str = typer.Option(None, help="organization id, to find the local cluster"),
) -> None:
    if cluster is None:
        if org is None:
            errors.print("give --cluster, or --org to use the organization's local cluster")
            raise typer.Exit(1)
        clusters = _run("GET", f"/organizations/{org}/clusters")["items"]
        cluster = next(c["id"] for c in clusters if c["kind"] == "local")
    env = _run(
        "POST",
        f"/projects/{project}/environments",
        {"name": name, "mode": mode, "cluster_id": cluster},
    )
    console.print(env["id"])


_STYLES = {"stderr": "red", "system": "cyan"}  # stdout lines keep the terminal's colour


def _show(line: dict[str, Any]) -> None:
    console.print(
        line["text"],
        style=_STYLES.get(line["stream"]),
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


def _print_logs(path: str, follow: bool, tail: int, since: str | None, grep: str | None) -> None:
    params = {"tail": str(tail)} if tail or follow else {}  # a read's tail is 1 or more
    if since:
        params["since"] = log_lines.since_param(since) or since
    if grep:
        params["q"] = grep
    try:
        if not follow:
            for line in log_lines.read(path, params):
                _show(line)
            return
        status = log_lines.follow(path, params, _show, lambda note: errors.print(note))
    except ApiError as exc:
        errors.print(f"[red]{exc.code}[/red]: {exc.message}")
        raise typer.Exit(2 if exc.status == 0 else 1) from None
    except KeyboardInterrupt:
        raise typer.Exit(0) from None  # Ctrl-C ends a follow; nothing went wrong
    if status is not None:
        errors.print(f"deployment ended: {status}")
        raise typer.Exit(0 if status == "SUCCESS" else 1)


_FOLLOW = typer.Option(False, "--follow", "-f", help="Keep printing new lines")
_TAIL = typer.Option(100, "--tail", "-n", min=0, max=5000, help="Lines from the end first")
_SINCE = typer.Option(None, help="Lines since: 10m, 2h, 1d, or an ISO time")
_GREP = typer.Option(None, help="Only lines containing TEXT (case-insensitive)")


@app.command("logs")
def logs(
    service: str,
    follow: bool = _FOLLOW,
    tail: int = _TAIL,
    since: str = _SINCE,
    grep: str = _GREP,
) -> None:
    """A service's live output (stderr in red, the platform's lines in cyan)."""
    _print_logs(f"/services/{service}/logs", follow, tail, since, grep)


@deployments.command("logs")
def deployments_logs(
    deployment: str,
    follow: bool = _FOLLOW,
    tail: int = typer.Option(5000, "--tail", "-n", min=0, max=5000),
    grep: str = _GREP,
) -> None:
    """A deployment's build and deploy lines; with -f until it ends (exit 0: it succeeded)."""
    _print_logs(f"/deployments/{deployment}/logs", follow, tail, None, grep)


@app.command("api")
def api(
    method: str, path: str, data: str = typer.Option(None, "--data", "-d", help="JSON body")
) -> None:
    """Call any public route: `slipway api GET /me`."""
    body = json.loads(data) if data else None
    console.print_json(json.dumps(_run(method.upper(), path, body)))


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
