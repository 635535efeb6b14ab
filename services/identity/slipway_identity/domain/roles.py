"""Built-in roles and the membership rules that do not depend on storage."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

from slipway_libs.errors import Clash, Denied

BuiltinRole = Literal["owner", "admin", "devops", "viewer", "billing"]
BUILTIN_ROLES: tuple[str, ...] = get_args(BuiltinRole)

DESCRIPTIONS = {
    "owner": "Everything, including deleting the organization and transferring ownership.",
    "admin": "Everything except deleting the organization and transferring ownership.",
    "devops": "Clusters, API tokens, webhooks, projects; deploy and configure any environment.",
    "viewer": "Read the organization, its projects and environments.",
    "billing": "Read the organization and manage billing.",
}


def role_reference(role: str | None, custom_role_id: uuid.UUID | None) -> str:
    """How a holder's role is named in answers: the built-in role, else the custom role's id."""
    return role or str(custom_role_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class CustomRole:
    """Per-cluster and per-project grants, stored as the contract's grant documents (JSON)."""

    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    description: str
    clusters: list[dict[str, Any]]
    projects: list[dict[str, Any]]
    version: int
    created_at: datetime
    deleted_at: datetime | None


# How far a role reaches; nobody grants (to a member or an API token) more than they hold.
_RANK = {"owner": 4, "admin": 3, "devops": 2, "viewer": 1, "billing": 1}


def check_can_grant(
    *, actor_role: str | None, granted_role: str | None, previous_role: str | None = None
) -> None:
    """Only an owner makes (or unmakes) an owner; nobody grants a role above their own.

    ``None`` stands for a custom role, which never reaches the organization-level powers.
    ``actor_role`` None means the system itself (no limit).
    """
    if actor_role is None:
        return
    if "owner" in (granted_role, previous_role) and actor_role != "owner":
        raise Denied("OWNER_ONLY", "Only an owner can grant or take away the owner role.")
    if granted_role is not None and _RANK[granted_role] > _RANK.get(actor_role, 0):
        raise Denied("ROLE_TOO_HIGH", "You cannot grant a role above your own.")


def check_keeps_an_owner(*, owners: int, losing_owner: bool) -> None:
    """An organization always keeps at least one owner."""
    if losing_owner and owners <= 1:
        raise Clash(
            "LAST_OWNER", "The last owner cannot be removed or demoted; transfer ownership first."
        )


def role_name_taken() -> Clash:
    return Clash("ROLE_NAME_TAKEN", "A role with this name exists.", field="name")
