"""Events produced by the catalog service: the full new state of each entity it owns.

Event-carried state transfer: every change publishes the entity's complete current state with a
monotonic ``version`` (newer wins), and a delete publishes a tombstone (``deleted: true``), so
that the deployer, the scheduler and the gateway keep their own projections without calling the
catalog. Secrets never travel in clear: a secret variable's value is sealed with the
installation's transport key (``value_sealed``, base64) and only its holders can open it.

Two topics: ``catalog.cluster.v1`` (key: cluster id) and ``catalog.project.v1`` (key: project
id) which carries everything inside a project (the project, its environments, services, stages,
deployment rules and variables), so that one project's changes arrive in the order they were
made and a consumer never sees a service before its environment.

Every event of ``catalog.project.v1`` also carries the project's ``revision``: a counter the
catalog increments in the transaction of each change it makes inside the project, so a
consumer's projection has reached revision *n* once it applied the event that carries *n*. A
catalog write answers it (``X-Slipway-Catalog-Revision: <project id>:<n>``), and a caller that
hands it back to the deployer is served from a projection at least that fresh (read-your-writes
across services). Optional (added in v1): absent from events written before it existed.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from slipway_contracts.envelope import EventPayload

CLUSTER_TOPIC = "catalog.cluster.v1"
PROJECT_TOPIC = "catalog.project.v1"
GIT_CREDENTIAL_TOPIC = "catalog.git_credential.v1"

EnvironmentMode = Literal["production", "staging", "development", "preview"]


class ClusterChanged(EventPayload):
    """A cluster's current state. Its credentials never travel in clear: ``credentials_sealed``
    is the access the deployer connects with (JSON ``{"api_url", "token", "ca_cert",
    "insecure"}``) sealed with the transport key, bound to the cluster's id, base64; None for
    the local cluster. Optional (added in v1): ``credentials_sealed``, ``capabilities`` (what
    the cluster runs: ``kinds``, ``databases``) and ``settings`` (e.g. ``ingress_class``)."""

    event_type = "catalog.ClusterChanged"
    topic = CLUSTER_TOPIC

    cluster_id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    kind: Literal["local", "self_managed"]
    api_url: str | None = None
    deleted: bool = False
    version: int
    credentials_sealed: str | None = None
    capabilities: dict[str, Any] | None = None
    settings: dict[str, str] | None = None


class ProjectChanged(EventPayload):
    event_type = "catalog.ProjectChanged"
    topic = PROJECT_TOPIC

    project_id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    description: str = ""
    deleted: bool = False
    version: int
    revision: int | None = None


class EnvironmentChanged(EventPayload):
    event_type = "catalog.EnvironmentChanged"
    topic = PROJECT_TOPIC

    environment_id: uuid.UUID
    organization_id: uuid.UUID
    project_id: uuid.UUID
    name: str
    mode: EnvironmentMode
    cluster_id: uuid.UUID
    cloned_from: uuid.UUID | None = None
    deleted: bool = False
    version: int
    revision: int | None = None


class ServiceChanged(EventPayload):
    """A service's full configuration (``spec``: the validated kind-specific settings)."""

    event_type = "catalog.ServiceChanged"
    topic = PROJECT_TOPIC

    service_id: uuid.UUID
    organization_id: uuid.UUID
    project_id: uuid.UUID
    environment_id: uuid.UUID
    name: str
    kind: Literal["application", "container", "database", "cronjob", "lifecycle", "helm"]
    spec: dict[str, Any]
    stage_id: uuid.UUID | None = None
    deleted: bool = False
    version: int
    revision: int | None = None


class StageChanged(EventPayload):
    event_type = "catalog.StageChanged"
    topic = PROJECT_TOPIC

    stage_id: uuid.UUID
    organization_id: uuid.UUID
    environment_id: uuid.UUID
    name: str
    position: int
    deleted: bool = False
    version: int
    revision: int | None = None


class DeploymentRuleChanged(EventPayload):
    event_type = "catalog.DeploymentRuleChanged"
    topic = PROJECT_TOPIC

    environment_id: uuid.UUID
    organization_id: uuid.UUID
    auto_stop: bool = False
    auto_start: bool = False
    timezone: str = "UTC"
    weekdays: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = []
    start_time: str | None = None
    stop_time: str | None = None
    auto_preview: bool = False
    # hours a pull request's preview of the environment lives (None: the platform's default);
    # optional, added in v1
    preview_ttl_hours: int | None = None
    version: int
    revision: int | None = None


class PreviewChanged(EventPayload):
    """A pull request's preview environment now builds ``branch`` at ``commit`` (its
    applications from the pull request's repository point there): deploy it. Published after
    the changes it sums up, in their transaction, so that a consumer of the project's events
    has the whole preview environment when it reads this. Added in v1."""

    event_type = "catalog.PreviewChanged"
    topic = PROJECT_TOPIC

    environment_id: uuid.UUID
    organization_id: uuid.UUID
    project_id: uuid.UUID
    pull_request: int
    branch: str
    commit: str
    revision: int | None = None


class VariableChanged(EventPayload):
    """A variable's state; a secret's value only as ``value_sealed`` (transport key)."""

    event_type = "catalog.VariableChanged"
    topic = PROJECT_TOPIC

    variable_id: uuid.UUID
    organization_id: uuid.UUID
    scope: Literal["project", "environment", "service"]
    parent_id: uuid.UUID
    project_id: uuid.UUID
    environment_id: uuid.UUID | None = None
    key: str
    kind: Literal["value", "alias", "override", "file"]
    value: str | None = None
    value_sealed: str | None = None
    is_secret: bool = False
    mount_path: str | None = None
    deleted: bool = False
    version: int
    revision: int | None = None


class GitCredentialChanged(EventPayload):
    """An organization's credential for private git repositories, as full state: an https
    token (``kind: token``) or an SSH private key (``ssh_key``), for the repositories on
    ``host`` (every host when None). ``secret_sealed``: the token or the key, sealed with the
    installation's transport key, the credential id's bytes as associated data (base64); None
    on a tombstone. ``known_hosts``: an SSH key's host keys (OpenSSH known_hosts lines)."""

    event_type = "catalog.GitCredentialChanged"
    topic = GIT_CREDENTIAL_TOPIC

    credential_id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    kind: Literal["token", "ssh_key"]
    host: str | None = None
    secret_sealed: str | None = None
    known_hosts: str | None = None
    deleted: bool = False
    version: int


PAYLOADS: tuple[type[EventPayload], ...] = (
    ClusterChanged,
    ProjectChanged,
    EnvironmentChanged,
    ServiceChanged,
    StageChanged,
    DeploymentRuleChanged,
    PreviewChanged,
    VariableChanged,
    GitCredentialChanged,
)
