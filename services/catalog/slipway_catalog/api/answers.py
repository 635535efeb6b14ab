"""What the catalog's internal routes answer (``slipway_libs.openapi``): the shapes
``schemas.*_out`` build, declared for the public OpenAPI document.

A service is answered as its kind's spec (``domain.specs``, the very models its create body is
validated with) plus its ids, times and version: one ``<Kind>ServiceOut`` per kind, told apart
by ``kind``. The routes answer through these models (their ``response_model``), so the
document cannot say one thing while they send another."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal, Union, get_args

from pydantic import BaseModel, ConfigDict, Field, RootModel, create_model

from slipway_catalog.domain.rules import Weekday
from slipway_catalog.domain.service_specs import AnyServiceSpec
from slipway_contracts.variables import Kind, Scope
from slipway_libs.openapi import Answer, Answers, Time, page_of

VERSION = Field(description="Changes with every update: send it back as If-Match (also the ETag).")


class DatabaseOffer(Answer):
    engine: str
    versions: list[str]
    default_version: str


class CapabilitiesOut(Answer):
    kinds: list[str] = Field(description="The service kinds the cluster runs.")
    databases: list[DatabaseOffer]


class ClusterOut(Answer):
    id: uuid.UUID
    name: str
    kind: str = Field(examples=["local", "self_managed"])
    api_url: str | None
    organization_id: uuid.UUID
    created_at: Time | None
    resource_version: int = VERSION
    capabilities: CapabilitiesOut


class ClusterNodeOut(Answer):
    name: str
    ready: bool
    kubelet_version: str | None


class ClusterNodesOut(Answer):
    total: int = Field(description="Every node, those beyond the listed ones included.")
    ready: int = Field(description="The listed nodes that are Ready.")
    items: list[ClusterNodeOut] = Field(description="The nodes read (a bounded list).")


class ClusterPermissionsOut(Answer):
    ok: bool
    missing: list[str] = Field(description="What Slipway's account may not do.")


class ClusterCheckOut(Answer):
    """What the check read (``usecases.clusters.check``). What it has nothing for is absent: a
    usable self-managed cluster has no reason and no message; nodes and permissions come only
    from an API server that answered."""

    ok: bool
    kind: str
    message: str | None = Field(
        default=None,
        description="Why the cluster is not usable (a local one: what it is); absent when a "
        "self-managed one is.",
    )
    reason: str | None = None
    kubernetes_version: str | None = None
    nodes: ClusterNodesOut | None = Field(
        default=None, description="null: the account may not list nodes."
    )
    permissions: ClusterPermissionsOut | None = None


class ProjectOut(Answer):
    id: uuid.UUID
    name: str = Field(examples=["shop"])
    description: str
    organization_id: uuid.UUID
    created_at: Time | None
    updated_at: Time | None
    resource_version: int = VERSION


class EnvironmentOut(Answer):
    id: uuid.UUID
    name: str = Field(examples=["staging"])
    mode: Literal["production", "staging", "development", "preview"]
    cluster_id: uuid.UUID
    project_id: uuid.UUID
    organization_id: uuid.UUID
    cloned_from: uuid.UUID | None
    created_at: Time | None
    updated_at: Time | None
    resource_version: int = VERSION


class _ServiceFields(Answer):
    """What every service answer adds to its kind's spec."""

    # The spec models forbid unknown fields, validate strictly and are frozen (they are request
    # bodies); an answer is built from a stored row: ids and times as the route writes them,
    # every spec field present (the stored spec is dumped with its defaults), nothing else.
    model_config = ConfigDict(
        extra="ignore",
        strict=False,
        frozen=False,
        json_schema_extra=None,
        json_schema_serialization_defaults_required=True,
    )

    id: uuid.UUID
    environment_id: uuid.UUID
    project_id: uuid.UUID
    stage_id: uuid.UUID | None
    created_at: Time | None
    updated_at: Time | None
    resource_version: int = VERSION


def _answer_of(spec: type[BaseModel]) -> type[BaseModel]:
    """``<Kind>ServiceOut``: the kind's own spec model (its fields, bounds and defaults, not a
    copy) with the service's common fields."""
    name = spec.__name__.removesuffix("Spec") + "ServiceOut"
    model: type[BaseModel] = create_model(
        name, __base__=(spec, _ServiceFields), __module__=__name__, __doc__=spec.__doc__
    )
    return model


SERVICE_ANSWERS = tuple(_answer_of(spec) for spec in get_args(AnyServiceSpec))


class ServiceOut(RootModel[Any]):
    """A service: its kind's specification and its ids, times and version."""

    root: Annotated[Union[SERVICE_ANSWERS], Field(discriminator="kind")]  # type: ignore[valid-type]  # noqa: UP007


class StageOut(Answer):
    id: uuid.UUID
    name: str
    position: int
    environment_id: uuid.UUID
    resource_version: int = VERSION


class DeploymentRuleOut(Answer):
    environment_id: uuid.UUID
    auto_stop: bool
    auto_start: bool
    timezone: str
    weekdays: list[Weekday]
    start_time: str | None
    stop_time: str | None
    auto_preview: bool
    preview_ttl_hours: int | None = None
    resource_version: int = VERSION


class VariableOut(Answer):
    id: uuid.UUID
    key: str = Field(examples=["DATABASE_URL"])
    scope: Literal["project", "environment", "service"]
    parent_id: uuid.UUID
    kind: str
    is_secret: bool
    mount_path: str | None
    description: str | None
    created_at: Time | None
    updated_at: Time | None
    resource_version: int = VERSION
    value: str | None = Field(default=None, description="Absent for a secret.")


class ResolvedVariableOut(Answer):
    """What the service receives under ``key`` and where it comes from
    (``slipway_contracts.variables.Resolved``, a secret's value masked)."""

    key: str
    value: str | None = Field(description="null for a secret.")
    is_secret: bool
    source_scope: Scope = Field(description="The scope of the variable that won.")
    source_id: uuid.UUID = Field(description="The variable that won.")
    kind: Kind
    mount_path: str | None = Field(description="Set: delivered as a file at this path.")
    via: list[str] = Field(description="The keys the value came from, depth first.")
    overridden_id: uuid.UUID | None = Field(
        description="For an override: the variable whose value it replaced."
    )


class GitCredentialOut(Answer):
    """A credential as every answer names it: never its secret."""

    id: uuid.UUID
    organization_id: uuid.UUID
    name: str = Field(examples=["github-ci"])
    kind: Literal["token", "ssh_key"]
    host: str | None = Field(description="The host it serves; null: every host.")
    has_known_hosts: bool
    created_at: Time
    resource_version: int


ServicePage = page_of(ServiceOut)
ClusterPage = page_of(ClusterOut)
ProjectPage = page_of(ProjectOut)
EnvironmentPage = page_of(EnvironmentOut)
StagePage = page_of(StageOut)
VariablePage = page_of(VariableOut)
ResolvedVariablePage = page_of(ResolvedVariableOut)
GitCredentialPage = page_of(GitCredentialOut)

I = "/internal/v1"  # noqa: E741
CREDENTIALS = f"{I}/organizations/{{org_id}}/git-credentials"
ENV = f"{I}/environments/{{env_id}}"
ANSWERS: Answers = {
    f"GET {I}/organizations/{{org_id}}/clusters": ClusterPage,
    f"POST {I}/organizations/{{org_id}}/clusters": ClusterOut,
    f"GET {I}/clusters/{{cluster_id}}": ClusterOut,
    f"PATCH {I}/clusters/{{cluster_id}}": ClusterOut,
    f"POST {I}/clusters/{{cluster_id}}/check": ClusterCheckOut,
    f"GET {I}/organizations/{{org_id}}/projects": ProjectPage,
    f"POST {I}/organizations/{{org_id}}/projects": ProjectOut,
    f"GET {I}/projects/{{project_id}}": ProjectOut,
    f"PATCH {I}/projects/{{project_id}}": ProjectOut,
    f"GET {I}/projects/{{project_id}}/environments": EnvironmentPage,
    f"POST {I}/projects/{{project_id}}/environments": EnvironmentOut,
    f"GET {ENV}": EnvironmentOut,
    f"PATCH {ENV}": EnvironmentOut,
    f"POST {ENV}/clone": EnvironmentOut,
    f"GET {ENV}/stages": StagePage,
    f"POST {ENV}/stages": StageOut,
    f"PUT {ENV}/stages/order": StagePage,
    f"PATCH {I}/stages/{{stage_id}}": StageOut,
    f"GET {ENV}/deployment-rule": DeploymentRuleOut,
    f"PUT {ENV}/deployment-rule": DeploymentRuleOut,
    f"GET {ENV}/services": ServicePage,
    f"POST {ENV}/services": ServiceOut,
    f"GET {I}/services/{{service_id}}": ServiceOut,
    f"PATCH {I}/services/{{service_id}}": ServiceOut,
    f"PUT {I}/services/{{service_id}}/stage": ServiceOut,
    f"GET {I}/services/{{service_id}}/variables/resolved": ResolvedVariablePage,
    f"GET {I}/variables": VariablePage,
    f"POST {I}/variables": VariableOut,
    f"GET {I}/variables/{{variable_id}}": VariableOut,
    f"PATCH {I}/variables/{{variable_id}}": VariableOut,
    f"GET {CREDENTIALS}": GitCredentialPage,
    f"POST {CREDENTIALS}": GitCredentialOut,
    f"GET {CREDENTIALS}/{{credential_id}}": GitCredentialOut,
}
