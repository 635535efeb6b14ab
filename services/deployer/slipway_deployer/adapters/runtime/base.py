"""The runtime ports: what the deployer asks of the place where services run (``local``,
``kubernetes``): ``Runtime`` for services and jobs, ``Databases`` for database services, and
``RuntimeOpener``, how a runtime is made for a self-managed cluster from its ``ClusterAccess``.
The execution depends on these protocols only; ``registry.Runtimes`` chooses them by the
environment's cluster.

Invariants every implementation keeps:
- ``Workload.env`` holds resolved values, secrets included: they are never logged, never put in an
  exception message, a status or a ``repr`` (the field is ``repr=False``).
- ``apply`` returns only once the service answers its health check; otherwise it raises
  ``RuntimeFailure`` with a stable ``reason`` (``FailureReason``) and a human message.
- Everything is keyed by ``service_id``. ``apply`` on a known service replaces it (new image, new
  env); ``stop`` keeps the definition so ``restart`` can bring it back; ``delete`` removes
  everything and is idempotent; ``status``/``restart``/``logs`` of an unknown service raise
  ``RuntimeFailure(NOT_FOUND)``.
- ``logs`` yields the recent buffered lines, then live lines as they come, until the service is
  deleted or the consumer stops iterating.
- The default port of a workload is the port marked ``default``, else the first declared one; the
  runtime sets ``PORT`` to the port the app must listen on.
- A runtime that cannot reach its cluster (API server down, credentials refused) raises
  ``RuntimeFailure(CLUSTER_UNREACHABLE)``; it never falls back to another place to run.
- ``ClusterAccess.token`` is a secret: never logged, never in a message (``repr=False``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal, Protocol, runtime_checkable
from urllib.parse import quote


class RunStatus(StrEnum):
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    WARNING = "WARNING"  # crashed recently and being restarted
    ERROR = "ERROR"  # failed to start, or gave up restarting
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    COMPLETED = "COMPLETED"  # a job that exited 0


class FailureReason(StrEnum):
    INVALID_WORKLOAD = "INVALID_WORKLOAD"
    PULL_FAILED = "PULL_FAILED"
    TARGET_NOT_ALLOWED = "TARGET_NOT_ALLOWED"  # an image's registry the platform may not reach
    START_FAILED = "START_FAILED"
    CRASHED = "CRASHED"
    HEALTHCHECK_FAILED = "HEALTHCHECK_FAILED"
    TIMEOUT = "TIMEOUT"
    NOT_FOUND = "NOT_FOUND"
    RUNTIME_ERROR = "RUNTIME_ERROR"
    CLUSTER_UNREACHABLE = "CLUSTER_UNREACHABLE"  # the cluster's API server: down, or refusing us
    RUNTIME_NOT_AVAILABLE = "RUNTIME_NOT_AVAILABLE"  # no runtime for that kind of cluster here
    HELM_FAILED = "HELM_FAILED"  # helm refused or failed to install a chart (its reason follows)
    CHART_SOURCE_NOT_SUPPORTED = "CHART_SOURCE_NOT_SUPPORTED"  # a source the runtime does not know
    # a git chart: its path leaves the checkout (``..``, a symlink), or is not a chart there
    CHART_PATH_INVALID = "CHART_PATH_INVALID"
    CHART_NOT_FOUND = "CHART_NOT_FOUND"
    GIT_FETCH_FAILED = "GIT_FETCH_FAILED"  # the chart's repository, branch or commit
    GIT_AUTH_FAILED = "GIT_AUTH_FAILED"  # the remote refused the organization's credential


class RuntimeFailure(Exception):
    """A runtime operation failed; ``reason`` is stable, ``message`` is for people (no secrets)."""

    def __init__(self, reason: FailureReason, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class PortSpec:
    port: int
    protocol: str = "http"
    public: bool = False
    default: bool = False


@dataclass(frozen=True)
class HealthSpec:
    """``http``: GET ``path`` must answer 2xx; ``tcp``: the port must accept a connection.
    ``port`` is a declared port (the default port when None)."""

    type: Literal["http", "tcp"] = "tcp"
    path: str = "/"
    port: int | None = None
    initial_delay_s: float = 0.0
    period_s: float = 10.0
    timeout_s: float = 1.0
    failure_threshold: int = 3


@dataclass(frozen=True)
class CronSpec:
    schedule: str  # five-field cron
    timezone: str = "UTC"
    concurrency_policy: Literal["allow", "forbid", "replace"] = "forbid"


@dataclass(frozen=True)
class Workload:
    service_id: str
    environment_id: str
    name: str
    image: str  # a registry reference, e.g. 127.0.0.1:15000/org/svc:commit
    command: list[str] | None = None  # replaces the image's entrypoint
    args: list[str] | None = None  # replaces the image's cmd
    env: dict[str, str] = field(default_factory=dict, repr=False)  # secrets included
    # file variables: absolute path inside the container -> content (secrets included)
    files: dict[str, str] = field(default_factory=dict, repr=False)
    ports: list[PortSpec] = field(default_factory=list)
    health: HealthSpec | None = None
    kind: Literal["service", "job"] = "service"
    # whose workload it is: the platform registry's slipway/<organization>/... images are only
    # that organization's to pull (None: not checked)
    organization_id: str | None = None
    # sizing and schedule, from the service's spec: the kubernetes runtime renders them (requests
    # and limits, replicas, a CronJob); the local runtime runs one process and ignores them
    cpu_millicores: int | None = None
    memory_mib: int | None = None
    instances: int = 1
    cron: CronSpec | None = None  # a cron job's schedule (run natively by the cluster)
    project_id: str | None = None

    @property
    def default_port(self) -> PortSpec | None:
        marked = [p for p in self.ports if p.default]
        return (marked or self.ports)[0] if self.ports else None


@dataclass(frozen=True)
class Deployed:
    service_id: str
    host_ports: dict[int, int]  # declared port -> port on the host
    urls: dict[int, str]  # declared port -> http://host:port
    default_port: int | None = None  # declared

    @property
    def url(self) -> str | None:
        """The URL of the default port, if the workload declares ports."""
        return None if self.default_port is None else self.urls.get(self.default_port)


@dataclass(frozen=True)
class RunningState:
    status: RunStatus
    restarts: int
    urls: dict[int, str]
    message: str | None = None


@dataclass(frozen=True)
class LogLine:
    stream: Literal["stdout", "stderr"]
    text: str
    at: datetime


@dataclass(frozen=True)
class JobResult:
    exit_code: int
    output: str | None  # the content of /slipway/output.json, if the job wrote it
    duration_s: float


class Runtime(Protocol):
    async def apply(self, workload: Workload) -> Deployed: ...

    async def stop(self, service_id: str) -> None: ...

    async def restart(self, service_id: str) -> None: ...

    async def delete(self, service_id: str) -> None: ...

    async def status(self, service_id: str) -> RunningState: ...

    def logs(self, service_id: str) -> AsyncIterator[LogLine]: ...

    async def run_job(self, workload: Workload, *, timeout_s: float) -> JobResult: ...

    async def adopt(self) -> list[str]:
        """Take over what an earlier deployer process left running; the services' ids."""
        ...

    async def close(self) -> None:
        """Let go of what this process holds (what runs keeps running)."""
        ...


@runtime_checkable
class EnvironmentScoped(Protocol):
    """A runtime that keeps each environment in a place of its own (a Kubernetes namespace):
    deleting the whole environment removes that place too, volumes included. Idempotent.
    ``begin_deployment``: a deployment of the environment begins; what the runtime sets up once
    per environment (the place, its pull credentials) is set up again by its next apply, once
    for the whole deployment rather than once per service."""

    async def delete_environment(self, environment_id: str) -> None: ...

    def begin_deployment(self, environment_id: str) -> None: ...


@runtime_checkable
class PacedByCluster(Protocol):
    """A runtime (or databases) whose starts are a cluster's work, not this machine's (the
    ``kubernetes`` one): it paces its own requests, ``start_slots`` applies at once, and holds
    nothing while it watches a rollout. The deployer's start slots (``parallel_starts``, sized
    for processes started on this machine) do not gate it: a rollout that never gets ready must
    not hold a slot every other service waits for. Runtimes that are not one (``local``) keep
    starting behind those slots."""

    start_slots: int


@dataclass(frozen=True)
class GitAccess:
    """The organization's git credential for a chart's repository, opened (secrets: never
    logged, never in a message); empty for a public repository."""

    token: str | None = field(default=None, repr=False)
    ssh_key: str | None = field(default=None, repr=False)
    known_hosts: str | None = None


@dataclass(frozen=True)
class ChartRelease:
    """A Helm service as a runtime installs it: the catalog's helm spec's chart (``source``
    ``repository``: ``repository_url``, ``name``, exact ``version``; or ``git``: ``url``,
    ``branch``, ``commit`` — None: the branch's head now —, ``path``, fetched with ``git``),
    values, and the environment's variables (``env``, secrets included: never logged)."""

    service_id: str
    environment_id: str
    release_name: str
    chart: Mapping[str, object]
    values_yaml: str = field(default="", repr=False)
    set: Mapping[str, str] = field(default_factory=dict)
    set_string: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    timeout_s: float = 600.0
    organization_id: str | None = None
    project_id: str | None = None
    git: GitAccess = field(default_factory=GitAccess)


@dataclass(frozen=True)
class ReleaseState:
    name: str
    namespace: str
    revision: int
    status: str  # helm's: deployed, failed, pending-install...
    chart: str  # name-version
    app_version: str | None = None
    description: str | None = None
    commit: str | None = None  # a git chart: the commit installed (recorded for rollbacks)


@runtime_checkable
class Charts(Protocol):
    """A runtime that installs Helm charts (the ``kubernetes`` one). ``install_chart`` is an
    upgrade-or-install that returns once the release is deployed (else ``RuntimeFailure``,
    ``HELM_FAILED`` with helm's reason); ``uninstall_chart`` is idempotent; stop and restart
    scale the release's workloads down and back; ``chart_status`` is None for no release."""

    async def install_chart(self, release: ChartRelease) -> ReleaseState: ...

    async def uninstall_chart(self, environment_id: str, release_name: str) -> None: ...

    async def stop_chart(self, environment_id: str, release_name: str) -> None: ...

    async def restart_chart(self, environment_id: str, release_name: str) -> None: ...

    async def chart_status(self, environment_id: str, release_name: str) -> ReleaseState | None: ...


@dataclass(frozen=True)
class DatabaseConnection:
    host: str
    port: int
    user: str
    database: str
    password: str = field(repr=False)

    def url(self) -> str:
        """``postgresql://user:password@host:port/database``: a secret, never to be logged."""
        user, password = quote(self.user, safe=""), quote(self.password, safe="")
        database = quote(self.database, safe="")
        return f"postgresql://{user}:{password}@{self.host}:{self.port}/{database}"


class Databases(Protocol):
    """Database services (``engine`` at ``version``; None: the runtime's default). Keyed by
    service id like ``Runtime``: ``apply`` creates or starts and returns once a connection
    succeeds; ``stop`` keeps the data; ``delete`` removes it and is idempotent; ``status`` of an
    unknown database raises ``RuntimeFailure(NOT_FOUND)``."""

    async def apply(
        self,
        service_id: str,
        *,
        engine: str,
        version: str | None,
        name: str,
        environment_id: str | None = None,
    ) -> DatabaseConnection:
        """``environment_id``: where a cluster runtime puts it (the environment's namespace);
        the local runtime has no such place."""
        ...

    async def stop(self, service_id: str) -> None: ...

    async def restart(self, service_id: str) -> DatabaseConnection: ...

    async def delete(self, service_id: str) -> None: ...

    async def status(self, service_id: str) -> RunningState: ...

    def logs(self, service_id: str) -> AsyncIterator[LogLine]:
        """The server's log from now on, until the consumer stops iterating."""
        ...

    async def adopt(self) -> list[str]:
        """The databases an earlier deployer process left; their services' ids."""
        ...


@dataclass(frozen=True)
class ClusterAccess:
    """A self-managed cluster as the deployer reaches it, opened from the catalog's sealed
    credentials (``api_url`` already checked by the catalog; every connection is checked again
    against the platform's egress allow-list)."""

    cluster_id: str
    name: str
    api_url: str  # https://host[:port] (http only when allow-listed)
    token: str | None = field(default=None, repr=False)  # a bearer token: secret
    ca_cert: str | None = None  # PEM; None: the system's trust store
    insecure: bool = False  # skip TLS verification (a kubeconfig's insecure-skip-tls-verify)
    # the cluster's settings (e.g. ``ingress_class``) and what it advertises it runs
    settings: Mapping[str, str] = field(default_factory=dict)
    capabilities: Mapping[str, object] = field(default_factory=dict)


class RuntimeOpener(Protocol):
    """Makes the runtime (and its databases) of one self-managed cluster; the registry calls it
    once per cluster version and ``close``s what it made when the cluster changes. It may raise
    ``RuntimeFailure(CLUSTER_UNREACHABLE)``."""

    async def __call__(self, access: ClusterAccess) -> tuple[Runtime, Databases]: ...
