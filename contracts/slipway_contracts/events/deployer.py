"""Events (and commands) produced by the deployer service."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict

from slipway_contracts.envelope import EventPayload

BUILD_COMMANDS_TOPIC = "deployer.build.v1"


class GitSourceSpec(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    url: str
    branch: str = "main"
    commit: str | None = None
    root_path: str = "/"
    dockerfile_path: str = "Dockerfile"


class BuildRequested(EventPayload):
    """Build this service's source into ``<registry>/<image_repository>:<commit>``.

    ``git_token_sealed``: an https token sealed with the installation's transport key (base64),
    the build id's bytes as associated data; ``git_ssh_key_sealed``: an SSH private key, sealed
    the same way, with ``git_known_hosts`` (OpenSSH known_hosts lines) to check the host with.
    """

    event_type = "deployer.BuildRequested"
    topic = BUILD_COMMANDS_TOPIC

    build_id: uuid.UUID
    organization_id: uuid.UUID
    environment_id: uuid.UUID | None = None
    service_id: uuid.UUID
    deployment_id: uuid.UUID | None = None
    source: GitSourceSpec
    build_args: dict[str, str] = {}
    image_repository: str
    git_token_sealed: str | None = None
    git_ssh_key_sealed: str | None = None
    git_known_hosts: str | None = None


class BuildCancelRequested(EventPayload):
    event_type = "deployer.BuildCancelRequested"
    topic = BUILD_COMMANDS_TOPIC

    build_id: uuid.UUID
    organization_id: uuid.UUID


# --- deployments, for outside subscribers (keyed by environment id: one queue, in order) ------

DEPLOYMENT_TOPIC = "deployer.deployment.v1"
SERVICE_TOPIC = "deployer.service.v1"


class _DeploymentEvent(EventPayload):
    topic = DEPLOYMENT_TOPIC

    deployment_id: uuid.UUID
    environment_id: uuid.UUID
    organization_id: uuid.UUID
    action: str  # DEPLOY | STOP | RESTART | DELETE


class DeploymentQueued(_DeploymentEvent):
    """A request was accepted (202). ``trigger``: user | git_push | schedule | preview |
    rollback; ``requested_by``: the actor (user or token id), when there is one."""

    event_type = "deployer.DeploymentQueued"

    trigger: str
    service_ids: list[uuid.UUID] = []
    requested_by: str | None = None
    rollback_of: uuid.UUID | None = None


class DeploymentStarted(_DeploymentEvent):
    event_type = "deployer.DeploymentStarted"

    stages: list[str] = []


class DeploymentStageChanged(_DeploymentEvent):
    """``status``: QUEUED | ONGOING | DONE | ERROR | SKIPPED | CANCELED."""

    event_type = "deployer.DeploymentStageChanged"

    stage_id: uuid.UUID | None = None
    stage_name: str
    position: int
    status: str


class ServiceStatusChanged(_DeploymentEvent):
    """A service's deployment state (DESIGN §1 vocabulary) and what it runs now."""

    event_type = "deployer.ServiceStatusChanged"

    service_id: uuid.UUID
    state: str
    running_status: str | None = None
    urls: list[str] = []
    message: str | None = None


class DeploymentSucceeded(_DeploymentEvent):
    event_type = "deployer.DeploymentSucceeded"

    duration_s: float


class DeploymentFailed(_DeploymentEvent):
    """``reason`` is stable (BUILD_FAILED, HEALTHCHECK_FAILED, TIMEOUT, WORKER_LOST, ...)."""

    event_type = "deployer.DeploymentFailed"

    reason: str
    message: str
    duration_s: float


class DeploymentCanceled(_DeploymentEvent):
    event_type = "deployer.DeploymentCanceled"

    duration_s: float


class JobRunFinished(EventPayload):
    """One run of a cron (or lifecycle) job outside a deployment: forced through the API or
    fired by its schedule. ``status``: SUCCEEDED | FAILED | SKIPPED."""

    event_type = "deployer.JobRunFinished"
    topic = DEPLOYMENT_TOPIC

    run_id: uuid.UUID
    service_id: uuid.UUID
    environment_id: uuid.UUID
    organization_id: uuid.UUID
    trigger: str  # user | schedule
    status: str
    exit_code: int | None = None
    message: str | None = None
    duration_s: float = 0.0


class DatabaseConnectionChanged(EventPayload):
    """Where a deployed database answers and how to log in, for the catalog's built-in variables.

    ``password_sealed``: sealed with the installation's transport key (base64), the service id's
    bytes as associated data. ``deleted``: the database is gone (its variables too). Full state;
    ``version`` grows with every change, so a consumer keeps the newest.
    """

    event_type = "deployer.DatabaseConnectionChanged"
    topic = SERVICE_TOPIC

    service_id: uuid.UUID
    environment_id: uuid.UUID
    organization_id: uuid.UUID
    engine: str
    host: str
    port: int
    user: str
    database: str
    password_sealed: str
    version: int
    deleted: bool = False


PAYLOADS: tuple[type[EventPayload], ...] = (
    BuildRequested,
    BuildCancelRequested,
    DeploymentQueued,
    DeploymentStarted,
    DeploymentStageChanged,
    ServiceStatusChanged,
    DeploymentSucceeded,
    DeploymentFailed,
    DeploymentCanceled,
    JobRunFinished,
    DatabaseConnectionChanged,
)
