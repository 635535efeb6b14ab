"""Request and response bodies of the identity service's internal API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from slipway_contracts.events.identity import ClusterGrant, ProjectGrant


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SignUp(Body):
    email: str = Field(max_length=254)
    password: str = Field(max_length=256)
    name: str = Field(max_length=200)


class Login(Body):
    email: str = Field(max_length=254)
    password: str = Field(max_length=256)


class Refresh(Body):
    refresh_token: str = Field(max_length=200)


class OrganizationIn(Body):
    name: str = Field(max_length=200)
    description: str = Field(default="", max_length=1000)


class OrganizationPatch(Body):
    name: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=1000)


class Transfer(Body):
    user_id: uuid.UUID


class Invite(Body):
    email: str = Field(max_length=254)
    role: str = Field(max_length=64)


class AcceptInvitation(Body):
    # the invitation link's token; optional here so that its absence answers a stable code
    token: str | None = Field(default=None, max_length=200)


class RoleChange(Body):
    role: str = Field(max_length=64)


class CustomRoleIn(Body):
    name: str = Field(max_length=100)
    description: str = Field(default="", max_length=500)
    clusters: list[ClusterGrant] = Field(default_factory=list, max_length=500)
    projects: list[ProjectGrant] = Field(default_factory=list, max_length=500)


class CustomRolePatch(Body):
    name: str | None = Field(default=None, max_length=100)
    description: str | None = Field(default=None, max_length=500)
    clusters: list[ClusterGrant] | None = Field(default=None, max_length=500)
    projects: list[ProjectGrant] | None = Field(default=None, max_length=500)


class ApiTokenIn(Body):
    name: str = Field(max_length=100)
    role: str = Field(max_length=64)
    description: str = Field(default="", max_length=500)


class TokenUsage(Body):
    used: dict[uuid.UUID, datetime] = Field(max_length=10_000)


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
