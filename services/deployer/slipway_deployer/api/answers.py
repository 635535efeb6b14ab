"""What the deployer's internal routes answer (``slipway_libs.openapi``): the shapes the routes
and ``usecases.status`` / ``usecases.jobs`` build, declared for the public OpenAPI document."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import Field

from slipway_libs.openapi import Answer, Answers, Time, page_of


class AcceptedOut(Answer):
    """The request is queued (or merged into a queued deployment of the same action)."""

    request_id: uuid.UUID
    deployment_id: uuid.UUID
    environment_id: uuid.UUID
    action: str = Field(examples=["DEPLOY"])
    status: str = Field(examples=["QUEUED"])
    trigger: str | None
    service_ids: list[uuid.UUID]
    merged: bool = Field(description="true: joined a deployment already queued.")


class ServiceRunOut(Answer):
    service_id: uuid.UUID
    name: str
    kind: str
    status: str
    build_id: uuid.UUID | None
    build_status: str | None
    image: str | None
    commit: str | None
    reason: str | None
    message: str | None
    steps: dict[str, Any]
    started_at: Time | None
    finished_at: Time | None


class StageRunOut(Answer):
    position: int
    stage_id: uuid.UUID | None
    name: str
    status: str
    started_at: Time | None
    finished_at: Time | None
    duration_s: float | None
    services: list[ServiceRunOut]


class ServiceStatusOut(Answer):
    id: uuid.UUID
    name: str
    kind: str
    state: str
    action: str | None
    status: str
    running_status: str | None
    urls: list[str]
    message: str | None
    freshness: str = Field(examples=["UP_TO_DATE"])
    freshness_reason: str | None = Field(
        default=None, examples=["new commit available", "configuration changed"]
    )
    available_commit: str | None = Field(
        default=None, description="The commit a push moved the branch to, not running yet."
    )
    deployed_commit: str | None = Field(default=None, description="The commit that runs.")
    image: str | None
    deployment_id: uuid.UUID | None
    updated_at: Time | None


class EnvironmentStatusOut(Answer):
    environment_id: uuid.UUID
    state: str
    action: str | None
    status: str
    freshness: str
    freshness_reason: str | None = None
    available_commit: str | None = None
    urls: list[str] = Field(default_factory=list, description="Every service's URLs.")
    deployment_id: uuid.UUID | None
    queued: list[uuid.UUID]
    stages: list[StageRunOut]
    services: list[ServiceStatusOut]
    allowed_actions: list[str]


class TriggeredByOut(Answer):
    """Who or what asked for the deployment (what was recorded of it: any field may be
    absent)."""

    type: Literal["user", "api_token", "system"] | None = None
    id: str | None = Field(
        default=None, description="A user's or an API token's id; a system's name (git, …)."
    )
    name: str | None = None
    origin: Literal["api", "cli", "git", "scheduler", "system"] | None = None


class DeploymentOut(Answer):
    id: uuid.UUID
    request_id: uuid.UUID
    environment_id: uuid.UUID
    action: str
    status: str
    trigger: str | None = Field(
        examples=["user", "git_push", "preview", "schedule", "rollback", "redeploy", "system"]
    )
    triggered_by: TriggeredByOut
    service_ids: list[uuid.UUID]
    version: str | None
    rollback_of: uuid.UUID | None
    commits: list[dict[str, str]] = Field(
        default_factory=list, description='What it deployed: [{"service_id", "commit"}].'
    )
    reason: str | None
    message: str | None
    created_at: Time | None
    started_at: Time | None
    finished_at: Time | None
    duration_s: float | None


class DeploymentDetailOut(DeploymentOut):
    stages: list[StageRunOut]
    snapshot: dict[str, Any] = Field(
        description="What it deployed: services, images, and variables by id (never values)."
    )


class JobRunOut(Answer):
    run_id: uuid.UUID
    service_id: uuid.UUID
    environment_id: uuid.UUID
    trigger: str
    status: str
    exit_code: int | None
    message: str | None
    scheduled_at: Time | None
    created_at: Time | None
    started_at: Time | None
    finished_at: Time | None


I = "/internal/v1"  # noqa: E741
ENV = f"{I}/environments/{{env_id}}"
SVC = f"{I}/services/{{service_id}}"
ANSWERS: Answers = {
    **{
        f"POST {ENV}/{action}": AcceptedOut
        for action in ("deploy", "stop", "restart", "delete", "redeploy", "cancel")
    },
    f"GET {ENV}/status": EnvironmentStatusOut,
    f"GET {ENV}/deployments": page_of(DeploymentOut),
    **{f"POST {SVC}/{action}": AcceptedOut for action in ("deploy", "stop", "restart")},
    f"POST {SVC}/run": JobRunOut,
    f"GET {SVC}/runs": page_of(JobRunOut),
    f"GET {SVC}/status": ServiceStatusOut,
    f"GET {SVC}/deployments": page_of(DeploymentOut),
    f"GET {I}/deployments/{{deployment_id}}": DeploymentDetailOut,
    f"POST {I}/deployments/{{deployment_id}}/rollback": AcceptedOut,
}
