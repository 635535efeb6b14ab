"""``slipway context``: several gateways, each with its own session; one is current."""

from __future__ import annotations

import typer

from slipway_cli import contexts
from slipway_cli.common import OUTPUT, console
from slipway_cli.output import Output, render

context = typer.Typer(
    help="Gateways you use (each with its own login); $SLIPWAY_CONTEXT picks one per command.",
    no_args_is_help=True,
)


@context.command("list")
def list_(output: Output = OUTPUT) -> None:
    """The contexts; the current one is marked."""
    items, current = contexts.listed()
    rows = [
        {"current": "*" if c.name == current else "", "name": c.name, "url": c.url} for c in items
    ]
    render(console, rows, output, ("current", "name", "url"))


@context.command("add")
def add(
    name: str,
    url: str = typer.Option(..., "--url", help="the gateway, e.g. https://slipway.example.com"),
) -> None:
    """Add (or change) a context; the first one added becomes current."""
    added = contexts.add(name, url)
    console.print(f"context {added.name}: {added.url} (`slipway context use {added.name}`)")


@context.command("use")
def use(name: str) -> None:
    """Make a context current."""
    chosen = contexts.use(name)
    console.print(f"using {chosen.name} ({chosen.url})")


@context.command("remove")
def remove(name: str) -> None:
    """Forget a context and its saved session."""
    contexts.remove(name)
    console.print(f"removed {name}")
