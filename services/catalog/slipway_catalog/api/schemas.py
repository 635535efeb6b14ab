"""Request bodies and answers of the catalog's internal API.

Request bodies are ``slipway_libs.fields`` models: text fields typed by what they hold (names,
one-line values, free text, opaque values), numbers and booleans strict.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from slipway_catalog.api import answers
from slipway_catalog.api.answers import ServiceOut
from slipway_catalog.domain.capabilities import Capabilities
from slipway_catalog.domain.clusters import Cluster
from slipway_catalog.domain.environments import Environment
from slipway_catalog.domain.projects import Project
from slipway_catalog.domain.rules import SavedRule
from slipway_catalog.domain.services import Service
from slipway_catalog.domain.stages import Stage
from slipway_catalog.domain.variables import Variable
from slipway_libs.fields import Id, Line, Model, Name, Text, Value

Body = Model


class ProjectIn(Body):
    name: Name = Field(max_length=200)
    description: Text = Field(default="", max_length=1000)


class ProjectPatch(Body):
    name: Name | None = Field(default=None, max_length=200)
    description: Text | None = Field(default=None, max_length=1000)


class EnvironmentIn(Body):
    name: Name = Field(max_length=200)
    mode: Line = Field(max_length=20)
    cluster_id: Id


class EnvironmentPatch(Body):
    name: Name | None = Field(default=None, max_length=200)
    mode: Line | None = Field(default=None, max_length=20)
    cluster_id: Id | None = None


class CloneIn(Body):
    name: Name = Field(max_length=200)
    mode: Line | None = Field(default=None, max_length=20)
    cluster_id: Id | None = None


class StageIn(Body):
    name: Name = Field(max_length=100)
    position: int | None = Field(default=None, ge=0, le=1000)


class StagePatch(Body):
    name: Name = Field(max_length=100)


class StageOrder(Body):
    stage_ids: list[Id] = Field(max_length=100)


class ServiceStage(Body):
    stage_id: Id


class VariableIn(Body):
    scope: Literal["project", "environment", "service"]
    parent_id: Id
    key: Line = Field(max_length=128)
    # a value may hold anything an environment variable or a file can (newlines, escapes)
    value: Value = Field(max_length=1024 * 1024)
    kind: Literal["value", "alias", "override", "file"] = "value"
    is_secret: bool = False
    mount_path: Line | None = Field(default=None, max_length=4096)
    description: Text = Field(default="", max_length=255)


class VariablePatch(Body):
    value: Value | None = Field(default=None, max_length=1024 * 1024)
    mount_path: Line | None = Field(default=None, max_length=4096)
    description: Text | None = Field(default=None, max_length=255)


def shaped(model: type[BaseModel], fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` as the route's ``model`` sends them, so an idempotent replay (the stored first
    answer) is the same answer. Unset fields stay absent (a secret variable's ``value``), not
    null; ``Answer`` keeps fields its model does not name."""
    answer: dict[str, Any] = model.model_validate(fields).model_dump(
        mode="json", exclude_unset=True
    )
    return answer


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _id(value: Any) -> str | None:
    return str(value) if value is not None else None


def cluster_out(row: Cluster, offer: Capabilities) -> dict[str, Any]:
    return shaped(
        answers.ClusterOut,
        {
            "id": str(row.id),
            "name": row.name,
            "kind": row.kind,
            "api_url": row.api_url,
            "organization_id": str(row.organization_id),
            "created_at": _iso(row.created_at),
            "resource_version": row.version,
            "capabilities": offer.as_json(),
        },
    )


def project_out(project: Project) -> dict[str, Any]:
    return shaped(
        answers.ProjectOut,
        {
            "id": str(project.id),
            "name": project.name,
            "description": project.description,
            "organization_id": str(project.organization_id),
            "created_at": _iso(project.created_at),
            "updated_at": _iso(project.updated_at),
            "resource_version": project.version,
        },
    )


def environment_out(row: Environment) -> dict[str, Any]:
    return shaped(
        answers.EnvironmentOut,
        {
            "id": str(row.id),
            "name": row.name,
            "mode": row.mode,
            "cluster_id": str(row.cluster_id),
            "project_id": str(row.project_id),
            "organization_id": str(row.organization_id),
            "cloned_from": _id(row.cloned_from),
            "created_at": _iso(row.created_at),
            "updated_at": _iso(row.updated_at),
            "resource_version": row.version,
        },
    )


def service_out(row: Service) -> dict[str, Any]:
    """The answer as the routes' model sends it (an idempotent replay too: the stored first
    answer is this one, not the raw row)."""
    shaped: dict[str, Any] = ServiceOut.model_validate(service_fields(row)).model_dump(mode="json")
    return shaped


def service_fields(row: Service) -> dict[str, Any]:
    """What a service's answer is made of: its stored spec, its ids, times and version."""
    return {
        **row.spec,
        "id": str(row.id),
        "name": row.name,
        "kind": row.kind,
        "environment_id": str(row.environment_id),
        "project_id": str(row.project_id),
        "stage_id": _id(row.stage_id),
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
        "resource_version": row.version,
    }


def stage_out(row: Stage) -> dict[str, Any]:
    return shaped(
        answers.StageOut,
        {
            "id": str(row.id),
            "name": row.name,
            "position": row.position,
            "environment_id": str(row.environment_id),
            "resource_version": row.version,
        },
    )


def rule_out(row: SavedRule) -> dict[str, Any]:
    return shaped(
        answers.DeploymentRuleOut,
        {
            "environment_id": str(row.environment_id),
            "auto_stop": row.auto_stop,
            "auto_start": row.auto_start,
            "timezone": row.timezone,
            "weekdays": list(row.weekdays),
            "start_time": row.start_time,
            "stop_time": row.stop_time,
            "auto_preview": row.auto_preview,
            "preview_ttl_hours": row.preview_ttl_hours,
            "resource_version": row.version,
        },
    )


def variable_out(row: Variable) -> dict[str, Any]:
    out = {
        "id": str(row.id),
        "key": row.key,
        "scope": row.scope,
        "parent_id": str(row.parent_id),
        "kind": row.kind,
        "is_secret": row.is_secret,
        "mount_path": row.mount_path,
        "description": row.description,
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
        "resource_version": row.version,
    }
    if not row.is_secret:
        out["value"] = row.value
    return shaped(answers.VariableOut, out)
