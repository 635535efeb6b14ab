"""The ``slipway`` command line: a client of the gateway's public API, nothing else."""

from __future__ import annotations

import json
import os

import httpx
import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="Slipway: deploy your software from the command line.", no_args_is_help=True)
console = Console()

DEFAULT_URL = "http://127.0.0.1:8080"


@app.callback()
def main() -> None:
    """Talks to the gateway at $SLIPWAY_API_URL (default http://127.0.0.1:8080)."""


def api_url() -> str:
    return os.environ.get("SLIPWAY_API_URL", DEFAULT_URL).rstrip("/")


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
