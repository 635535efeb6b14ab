"""Commands produced by the scheduler service."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from slipway_contracts.envelope import EventPayload

COMMANDS_TOPIC = "scheduler.command.v1"


class JobRunRequested(EventPayload):
    """Run a deployed cron job now: its schedule fired at ``scheduled_at``. The deployer runs it
    once per ``(service_id, scheduled_at)`` however often the command is delivered, and applies
    the job's concurrency policy (``forbid`` skips a run while one is running)."""

    event_type = "scheduler.JobRunRequested"
    topic = COMMANDS_TOPIC

    service_id: uuid.UUID
    organization_id: uuid.UUID
    environment_id: uuid.UUID
    scheduled_at: datetime


class EnvironmentActionRequested(EventPayload):
    """Stop or start (deploy) an environment now: its deployment rule fired at ``scheduled_at``.
    The deployer queues it with the trigger ``schedule``, once per ``(environment_id, action,
    scheduled_at)`` however often the command is delivered. Where there is nothing to do (stop
    an environment that is not running) it is done."""

    event_type = "scheduler.EnvironmentActionRequested"
    topic = COMMANDS_TOPIC

    environment_id: uuid.UUID
    organization_id: uuid.UUID
    action: Literal["stop", "deploy"]
    scheduled_at: datetime


class ServiceDeployRequested(EventPayload):
    """Deploy one service at ``commit`` now: a signed git push (``trigger`` ``git_push``) to the
    repository and branch of an application with ``auto_deploy`` on. The deployer queues a
    deploy of that service at that commit with that trigger; ``delivery_id`` (the scheduler's
    record of the push) makes one request per (delivery, service) however often the command is
    delivered."""

    event_type = "scheduler.ServiceDeployRequested"
    topic = COMMANDS_TOPIC

    organization_id: uuid.UUID
    environment_id: uuid.UUID
    service_id: uuid.UUID
    commit: str
    trigger: Literal["git_push"] = "git_push"
    delivery_id: uuid.UUID | None = None


class PreviewRequested(EventPayload):
    """Open or update the preview environment of a pull request: a pull request opened,
    reopened or pushed to against the branch of ``blueprint_environment_id``, whose deployment
    rule has ``auto_preview``. The catalog clones the blueprint as ``environment_id`` (chosen by
    the scheduler, so that every command of one preview names it), mode ``preview``, named
    ``name``, the first time; each time it points the blueprint's applications ``service_ids``
    (those built from the pull request's repository) at ``branch`` and ``commit``, and says so
    (``catalog.PreviewChanged``) for the deployer to deploy it. A preview environment deleted
    since is left deleted."""

    event_type = "scheduler.PreviewRequested"
    topic = COMMANDS_TOPIC

    organization_id: uuid.UUID
    environment_id: uuid.UUID
    blueprint_environment_id: uuid.UUID
    service_ids: list[uuid.UUID]
    name: str
    pull_request: int
    branch: str
    commit: str


class PreviewDeletionRequested(EventPayload):
    """Delete a pull request's preview environment (what runs goes with it): the pull request
    was closed or merged (``reason`` ``closed``), or the preview outlived its time to live
    (``expired``). An environment already deleted, or not a preview, is left as it is."""

    event_type = "scheduler.PreviewDeletionRequested"
    topic = COMMANDS_TOPIC

    organization_id: uuid.UUID
    environment_id: uuid.UUID
    reason: Literal["closed", "expired"]


class NewCommitAvailable(EventPayload):
    """A git push moved the branch that the applications ``service_ids`` of one environment
    build to ``commit`` (``pushed_at``: when the scheduler received it), whether or not it
    deploys them (``auto_deploy`` off, path filters): the deployer records it, and a service
    whose last deployed build is another commit, built before the push, is ``OUT_OF_DATE``
    with "new commit available"."""

    event_type = "scheduler.NewCommitAvailable"
    topic = COMMANDS_TOPIC

    organization_id: uuid.UUID
    environment_id: uuid.UUID
    service_ids: list[uuid.UUID]
    branch: str
    commit: str
    pushed_at: datetime


PAYLOADS: tuple[type[EventPayload], ...] = (
    JobRunRequested,
    EnvironmentActionRequested,
    ServiceDeployRequested,
    PreviewRequested,
    PreviewDeletionRequested,
    NewCommitAvailable,
)
