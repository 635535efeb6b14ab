"""Request and response bodies of the identity service's internal API.

Request bodies are ``slipway_libs.fields`` models: text fields typed by what they hold (names,
one-line values, free text, opaque values), numbers and booleans strict.
"""

from __future__ import annotations

from typing import Annotated, Any

import asyncpg
from pydantic import BeforeValidator, Field

from slipway_contracts.events.identity import (
    ClusterGrant,
    ClusterPermission,
    EnvironmentMode,
    ProjectGrant,
    ProjectPermission,
)
from slipway_libs.fields import Id, Instant, Line, Model, Name, Text, Value

Body = Model


class SignUp(Body):
    email: Line = Field(max_length=254)
    password: Value = Field(max_length=256)
    name: Name = Field(max_length=200)


class Login(Body):
    email: Line = Field(max_length=254)
    password: Value = Field(max_length=256)


class Refresh(Body):
    refresh_token: Line = Field(max_length=200)


class OrganizationIn(Body):
    name: Name = Field(max_length=200)
    description: Text = Field(default="", max_length=1000)


class OrganizationPatch(Body):
    name: Name | None = Field(default=None, max_length=200)
    description: Text | None = Field(default=None, max_length=1000)


class Transfer(Body):
    user_id: Id


class Invite(Body):
    email: Line = Field(max_length=254)
    role: Line = Field(max_length=64)


class AcceptInvitation(Body):
    # the invitation link's token; optional here so that its absence answers a stable code
    token: Line | None = Field(default=None, max_length=200)


class RoleChange(Body):
    role: Line = Field(max_length=64)


class _ClusterGrantIn(Body):
    cluster_id: Id
    permission: ClusterPermission


class _ProjectGrantIn(Body):
    project_id: Id
    is_admin: bool = False
    environments: dict[EnvironmentMode, ProjectPermission] = Field(default_factory=dict)


def _strictly(model: type[Body]) -> BeforeValidator:
    """The contract's grant models are lax (events are trusted); a request's grant is first
    validated by the strict twin, so that ``"is_admin": "yes"`` or an unknown field is refused."""
    return BeforeValidator(lambda value: model.model_validate(value).model_dump())


ClusterGrantIn = Annotated[ClusterGrant, _strictly(_ClusterGrantIn)]
ProjectGrantIn = Annotated[ProjectGrant, _strictly(_ProjectGrantIn)]


class CustomRoleIn(Body):
    name: Name = Field(max_length=100)
    description: Text = Field(default="", max_length=500)
    clusters: list[ClusterGrantIn] = Field(default_factory=list, max_length=500)
    projects: list[ProjectGrantIn] = Field(default_factory=list, max_length=500)


class CustomRolePatch(Body):
    name: Name | None = Field(default=None, max_length=100)
    description: Text | None = Field(default=None, max_length=500)
    clusters: list[ClusterGrantIn] | None = Field(default=None, max_length=500)
    projects: list[ProjectGrantIn] | None = Field(default=None, max_length=500)


class ApiTokenIn(Body):
    name: Name = Field(max_length=100)
    role: Line = Field(max_length=64)
    description: Text = Field(default="", max_length=500)


class TokenUsage(Body):
    used: dict[Id, Instant] = Field(max_length=10_000)


def user_out(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "email": row["email"],
        "name": row["name"],
        "created_at": row["created_at"].isoformat(),
    }


def organization_out(row: asyncpg.Record) -> dict[str, Any]:
    out = {
        "id": str(row["id"]),
        "name": row["name"],
        "description": row["description"],
        "owner_id": str(row["owner_id"]),
        "created_at": row["created_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(),
    }
    if "role" in row.keys():  # noqa: SIM118 (a Record's `in` looks at values)
        out["role"] = row["role"] or str(row["custom_role_id"])
    return out


def member_out(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "user_id": str(row["user_id"]),
        "email": row.get("email"),
        "name": row.get("name"),
        "role": row["role"] or str(row["custom_role_id"]),
        "role_kind": "builtin" if row["role"] else "custom",
        "joined_at": row["created_at"].isoformat(),
    }


def invitation_out(row: asyncpg.Record, status: str) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "organization_id": str(row["organization_id"]),
        "email": row["email"],
        "role": row["role"] or str(row["custom_role_id"]),
        "status": status,
        "expires_at": row["expires_at"].isoformat(),
        "created_at": row["created_at"].isoformat(),
    }


def custom_role_out(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "kind": "custom",
        "name": row["name"],
        "description": row["description"],
        "clusters": row["clusters"],
        "projects": row["projects"],
        "created_at": row["created_at"].isoformat(),
    }


def api_token_out(row: asyncpg.Record) -> dict[str, Any]:
    last = row["last_used_at"]
    return {
        "id": str(row["id"]),
        "name": row["name"],
        "description": row["description"],
        "role": row["role"] or str(row["custom_role_id"]),
        "prefix": row["token_prefix"],
        "created_at": row["created_at"].isoformat(),
        "last_used_at": last.isoformat() if last else None,
    }


def audit_out(row: asyncpg.Record) -> dict[str, Any]:
    def opt(value: Any) -> Any:
        return str(value) if value is not None else None

    return {
        "id": str(row["id"]),
        "occurred_at": row["occurred_at"].isoformat(),
        "source": row["source"],
        "actor": {"type": row["actor_type"], "id": row["actor_id"], "name": row["actor_name"]},
        "origin": row["origin"],
        "action": row["action"],
        "target_type": row["target_type"],
        "target_id": row["target_id"],
        "target_name": row["target_name"],
        "project_id": opt(row["project_id"]),
        "environment_id": opt(row["environment_id"]),
        "change": row["change"],
    }
