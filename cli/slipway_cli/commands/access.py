"""``slipway clusters``, ``invitations``, ``roles``: where things run and who may do what."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from slipway_cli.common import ORG, OUTPUT, YES, api, confirm, console
from slipway_cli.inputs import UsageError
from slipway_cli.output import Output, render, show

clusters = typer.Typer(help="Clusters of an organization.", no_args_is_help=True)
invitations = typer.Typer(help="Invitations to an organization.", no_args_is_help=True)
roles = typer.Typer(help="Built-in and custom roles of an organization.", no_args_is_help=True)

_KUBECONFIG = typer.Option(None, exists=True, dir_okay=False, help="a kubeconfig file")
_CA_CERT = typer.Option(None, exists=True, dir_okay=False, help="the CA's PEM file")
_ROLE_FILE = typer.Option(
    ..., "--file", "-f", exists=True, dir_okay=False, help="the role as JSON (see /docs)"
)
CLUSTER_FIELDS = ("id", "name", "kind", "api_url", "capabilities", "created_at")


@clusters.command("list")
def clusters_list(org: str = ORG, output: Output = OUTPUT) -> None:
    """The organization's clusters (``local`` is always there)."""
    render(console, api.clusters(org), output, ("id", "name", "kind"))


@clusters.command("show")
def clusters_show(cluster: str, output: Output = OUTPUT) -> None:
    """One cluster (never its credentials)."""
    show(console, api.cluster(cluster), output, CLUSTER_FIELDS)


@clusters.command("register")
def clusters_register(
    name: str,
    kubeconfig: Path = _KUBECONFIG,
    api_url: str = typer.Option(None, help="https://host:port of the API server"),
    token: str = typer.Option(None, envvar="SLIPWAY_CLUSTER_TOKEN", help="a bearer token"),
    ca_cert: Path = _CA_CERT,
    org: str = ORG,
) -> None:
    """Register a self-managed Kubernetes cluster (credentials sealed, never shown again)."""
    body: dict[str, Any] = {"name": name, "kind": "self_managed"}
    if kubeconfig:
        body["kubeconfig"] = kubeconfig.read_text()
    elif api_url and token:
        body |= {"api_url": api_url, "token": token}
        if ca_cert:
            body["ca_cert"] = ca_cert.read_text()
    else:
        raise UsageError("give --kubeconfig, or --api-url and --token")
    console.print(api.register_cluster(org, body)["id"])


@clusters.command("check")
def clusters_check(cluster: str, output: Output = OUTPUT) -> None:
    """Can the platform reach it? Its Kubernetes version, nodes and permissions, or why not."""
    names = ("ok", "kubernetes_version", "reason", "message")
    show(console, api.check_cluster(cluster), output, names)


@clusters.command("delete")
def clusters_delete(cluster: str, yes: bool = YES) -> None:
    """Forget a cluster (refused while environments use it)."""
    confirm(f"delete cluster {cluster}?", yes)
    api.delete_cluster(cluster)
    console.print(f"deleted {cluster}")


@invitations.command("list")
def invitations_list(org: str = ORG, output: Output = OUTPUT) -> None:
    """Pending invitations."""
    render(console, api.invitations(org), output, ("id", "email", "role", "expires_at"))


@invitations.command("cancel")
def invitations_cancel(invitation: str, org: str = ORG) -> None:
    """Cancel a pending invitation."""
    api.cancel_invitation(org, invitation)
    console.print(f"canceled {invitation}")


@invitations.command("accept")
def invitations_accept(
    invitation: str, token: str = typer.Option(..., help="the token of the invitation's link")
) -> None:
    """Accept an invitation (signed in as the invited user)."""
    api.accept_invitation(invitation, token)
    console.print(f"accepted {invitation}")


@roles.command("list")
def roles_list(org: str = ORG, output: Output = OUTPUT) -> None:
    """Built-in and custom roles."""
    render(console, api.roles(org), output, ("id", "name", "kind", "description"))


@roles.command("show")
def roles_show(role: str, org: str = ORG, output: Output = OUTPUT) -> None:
    """A custom role: its grants on clusters and projects."""
    names = ("id", "name", "description", "clusters", "projects")
    show(console, api.role(org, role), output, names)


@roles.command("create")
def roles_create(
    file: Path = _ROLE_FILE,
    org: str = ORG,
) -> None:
    """Create a custom role from a JSON file ({"name", "clusters": [...], "projects": [...]})."""
    try:
        body = json.loads(file.read_text())
    except ValueError as exc:
        raise UsageError(f"{file}: not JSON ({exc})") from None
    console.print(api.create_role(org, body)["id"])


@roles.command("delete")
def roles_delete(role: str, org: str = ORG, yes: bool = YES) -> None:
    """Delete a custom role (refused while members or tokens hold it)."""
    confirm(f"delete role {role}?", yes)
    api.delete_role(org, role)
    console.print(f"deleted {role}")
