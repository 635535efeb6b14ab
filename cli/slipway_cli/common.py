"""What every command shares: the consoles, the typed client, ``--output``, and how failures
end a command.

Every command runs inside ``Group.invoke``, which turns a failure into one clear line and an
exit code: an API error prints ``CODE: message`` (exit 1), a usage problem found after parsing
prints ``Error: ...`` (exit 2, as typer's own usage errors), Ctrl-C prints nothing more than a
newline (exit 130, the shell's convention).
"""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console
from typer.core import TyperGroup

from slipway_cli import logs as log_lines
from slipway_cli.api import Slipway
from slipway_cli.client import ApiError
from slipway_cli.inputs import UsageError
from slipway_cli.output import Output

console = Console()
errors = Console(stderr=True)
api = Slipway()

OUTPUT = typer.Option(
    Output.table, "--output", "-o", case_sensitive=False, help="table, json or yaml"
)
ORG = typer.Option(..., "--org", envvar="SLIPWAY_ORG", help="organization id ($SLIPWAY_ORG)")
YES = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation")


class Group(TyperGroup):
    """The root group: failures of any command end here (see the module's docstring)."""

    def invoke(self, ctx: Any) -> Any:  # typer's own (vendored) click Context
        try:
            return super().invoke(ctx)
        except ApiError as exc:
            fail(exc)
        except UsageError as exc:
            errors.print(f"Error: {exc}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            errors.print()
            raise typer.Exit(130) from None


def fail(exc: ApiError) -> None:
    errors.print(f"[red]{exc.code}[/red]: {exc.message}", highlight=False, soft_wrap=True)
    for line in exc.detail_lines():
        errors.print(line, markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def confirm(question: str, yes: bool) -> None:
    """Ask before destroying (``--yes`` answers for scripts); no answer: nothing happens."""
    if not yes and not typer.confirm(question, default=False):
        errors.print("nothing done")
        raise typer.Exit(1)


_STYLES = {"stderr": "red", "system": "cyan"}  # stdout lines keep the terminal's colour


def show_line(line: dict[str, Any]) -> None:
    console.print(
        line["text"],
        style=_STYLES.get(line["stream"]),
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


def note(text: str) -> None:
    errors.print(text, markup=False, highlight=False)


def print_logs(path: str, follow: bool, tail: int, since: str | None, grep: str | None) -> None:
    params = {"tail": str(tail)} if tail or follow else {}  # a read's tail is 1 or more
    if since:
        params["since"] = log_lines.since_param(since) or since
    if grep:
        params["q"] = grep
    if not follow:
        for line in log_lines.read(path, params):
            show_line(line)
        return
    try:
        status = log_lines.follow(path, params, show_line, note)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None  # Ctrl-C ends a follow; nothing went wrong
    if status is not None:
        errors.print(f"deployment ended: {status}")
        raise typer.Exit(0 if status == "SUCCESS" else 1)


FOLLOW = typer.Option(False, "--follow", "-f", help="Keep printing new lines")
GREP = typer.Option(None, help="Only lines containing TEXT (case-insensitive)")
