"""``slipway git-credentials``: what the builder fetches an organization's private repositories
with — an https token, or an SSH private key. The secret is read from a file, standard input
(``-``) or a hidden prompt, never from the command line (a process list would show it), and no
answer ever contains it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from slipway_cli.common import ORG, OUTPUT, YES, api, confirm, console
from slipway_cli.inputs import UsageError
from slipway_cli.output import Output, render, show

git_credentials = typer.Typer(
    help="Git credentials of an organization (private repositories).", no_args_is_help=True
)
_ID = typer.Argument(..., help="git credential id")
SHOWN = ("id", "name", "kind", "host", "created_at")
_HOST = typer.Option(
    None, "--host", help="only for repositories on this host[:port] (default: every host)"
)

_KNOWN_HOSTS = typer.Option(
    None, "--known-hosts", help="a known_hosts file the server's host key is checked against"
)


def _secret_from(path: str | None, what: str) -> str:
    """A file's text, standard input's for ``-``, else a hidden prompt."""
    if path == "-":
        return sys.stdin.read().strip("\n")
    if path is not None:
        try:
            return Path(path).read_text().strip("\n")
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    return str(typer.prompt(what, hide_input=True))


@git_credentials.command("list")
def list_(org: str = ORG, output: Output = OUTPUT) -> None:
    """The organization's credentials: name, kind, host (never the secrets)."""
    render(console, api.git_credentials(org), output, SHOWN)


@git_credentials.command("add-token")
def add_token(
    name: str = typer.Argument(..., help="a name for it"),
    host: str | None = _HOST,
    token_file: str | None = typer.Option(
        None, "--token-file", help="read the token from this file, or - for standard input"
    ),
    org: str = ORG,
    output: Output = OUTPUT,
) -> None:
    """Add an https token (a personal or project access token of GitHub, GitLab, Gitea...)."""
    body: dict[str, Any] = {"name": name, "kind": "token", "host": host}
    body["token"] = _secret_from(token_file, "token")
    show(console, api.create_git_credential(org, body), output, SHOWN)


@git_credentials.command("add-ssh-key")
def add_ssh_key(
    name: str = typer.Argument(..., help="a name for it"),
    key_file: str = typer.Option(
        ..., "--key-file", help="the private key (no passphrase), or - for standard input"
    ),
    known_hosts: str | None = _KNOWN_HOSTS,
    host: str | None = _HOST,
    org: str = ORG,
    output: Output = OUTPUT,
) -> None:
    """Add an SSH private key (a deploy key) for ssh:// and user@host:path repositories."""
    body: dict[str, Any] = {"name": name, "kind": "ssh_key", "host": host}
    body["private_key"] = _secret_from(key_file, "private key") + "\n"
    if known_hosts is not None:
        body["known_hosts"] = _secret_from(known_hosts, "known hosts")
    show(console, api.create_git_credential(org, body), output, SHOWN)


@git_credentials.command("show")
def show_(credential: str = _ID, org: str = ORG, output: Output = OUTPUT) -> None:
    """One credential (never its secret)."""
    show(console, api.git_credential(org, credential), output, SHOWN)


@git_credentials.command("delete")
def delete(credential: str = _ID, org: str = ORG, yes: bool = YES) -> None:
    """Delete a credential: builds from then on go without it."""
    confirm(f"delete git credential {credential}?", yes)
    api.delete_git_credential(org, credential)
    console.print(f"deleted {credential}")
