"""What the scheduler's internal routes answer (``slipway_libs.openapi``): the shapes its use
cases' views build, declared for the public OpenAPI document."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import Field

from slipway_libs.openapi import Answer, Answers, Time, page_of


class JobScheduleOut(Answer):
    service_id: uuid.UUID
    schedule: str = Field(examples=["*/5 * * * *"])
    timezone: str | None
    deployed: bool
    next_run_at: Time | None
    last_scheduled_at: Time | None
    last_fired_at: Time | None
    last_lateness_ms: int | None


class ScheduleOut(Answer):
    environment_id: uuid.UUID
    auto_stop: bool
    auto_start: bool
    timezone: str | None
    weekdays: list[str]
    next_stop_at: Time | None
    next_start_at: Time | None
    last_stop_at: Time | None
    last_start_at: Time | None
    jobs: list[JobScheduleOut]


class WebhookOut(Answer):
    id: uuid.UUID
    organization_id: uuid.UUID
    url: str
    events: list[str]
    project_pattern: str | None
    environment_modes: list[str]
    format: str
    description: str
    created_at: Time


class CreatedWebhookOut(WebhookOut):
    secret: str = Field(description="The signing secret: shown this once.")


class AttemptOut(Answer):
    number: int
    attempted_at: Time
    signature: str | None
    response_code: int | None
    response_body: str | None
    duration_ms: int | None
    error: str | None
    next_attempt_at: Time | None


class WebhookDeliveryOut(Answer):
    id: uuid.UUID
    webhook_id: uuid.UUID
    event: str
    event_id: uuid.UUID
    status: str
    attempts: int
    last_response_code: int | None
    next_attempt_at: Time | None
    created_at: Time
    request: dict[str, Any] = Field(description="What is sent: its body.")
    attempt_log: list[AttemptOut]


class GitWebhookOut(Answer):
    id: uuid.UUID
    organization_id: uuid.UUID
    description: str
    path: str = Field(description="Where the provider sends its deliveries (public, signed).")
    created_at: Time


class CreatedGitWebhookOut(GitWebhookOut):
    secret: str = Field(description="The endpoint's secret, for the provider: shown this once.")


class TriggeredOut(Answer):
    """One thing a delivery set off: a push deploys a service of an environment; a pull
    request creates, deploys or deletes its preview environment."""

    environment_id: uuid.UUID
    service_id: uuid.UUID | None = Field(default=None, description="A push: the service deployed.")
    blueprint_environment_id: uuid.UUID | None = Field(
        default=None, description="A pull request: the environment its preview copies."
    )
    pull_request: int | None = Field(default=None, description="A pull request: its number.")
    action: Literal["create", "deploy", "delete"] | None = Field(
        default=None, description="A pull request: what was done to its preview."
    )


class GitDeliveryOut(Answer):
    id: uuid.UUID
    provider: str
    delivery_id: str
    event: str
    result: str = Field(
        description="What the delivery did: a push deployed | filtered (no changed file matched)"
        " | no_match; a pull request preview_opened | preview_updated | preview_closed"
        " | no_match | fork_refused (a fork's pull request is never previewed: its code would"
        " run with the environment's secrets); ping; ignored (another event or action)."
    )
    branch: str | None
    commit: str | None
    triggered: list[TriggeredOut] = Field(description="What the delivery deployed.")
    received_at: Time


class ReceivedGitDeliveryOut(GitDeliveryOut):
    duplicate: bool = Field(description="true: this delivery was received before (a redelivery).")


class GitPollOut(Answer):
    repository: str = Field(description="The repository, whatever its transport: host/owner/name.")
    branch: str
    last_commit: str | None = Field(description="The last head seen (polled or pushed).")
    polled_at: Time | None
    failures: int = Field(description="Polls failed in a row (0 after a success).")
    last_error: str | None = Field(
        description="The last failed poll: a stable code and sentence, e.g. 'GIT_AUTH_FAILED:"
        " … refused access to the repository'; kept after a success."
    )
    last_error_at: Time | None


I = "/internal/v1"  # noqa: E741
HOOKS = f"{I}/organizations/{{org_id}}/webhooks"
GIT = f"{I}/organizations/{{org_id}}/git-webhooks"
ANSWERS: Answers = {
    f"GET {I}/environments/{{environment_id}}/schedule": ScheduleOut,
    f"GET {HOOKS}": page_of(WebhookOut),
    f"POST {HOOKS}": CreatedWebhookOut,
    f"GET {HOOKS}/{{webhook_id}}": WebhookOut,
    f"GET {HOOKS}/{{webhook_id}}/deliveries": page_of(WebhookDeliveryOut),
    f"POST {HOOKS}/{{webhook_id}}/deliveries/{{delivery_id}}/redeliver": WebhookDeliveryOut,
    f"GET {GIT}": page_of(GitWebhookOut),
    f"POST {GIT}": CreatedGitWebhookOut,
    f"GET {GIT}/{{webhook_id}}": GitWebhookOut,
    f"GET {GIT}/{{webhook_id}}/deliveries": page_of(GitDeliveryOut),
    f"POST {I}/hooks/git/{{webhook_id}}": ReceivedGitDeliveryOut,
    f"GET {I}/organizations/{{org_id}}/git-polls": page_of(GitPollOut),
}
