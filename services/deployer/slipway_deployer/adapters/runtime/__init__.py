"""Runtimes: where deployed services run (DESIGN.md §4). ``base`` holds the ports every runtime
implements (``Runtime``, ``Databases``, ``RuntimeOpener``); ``local`` runs images on this machine
with buildah; ``registry`` chooses the runtime by the environment's cluster."""

from slipway_deployer.adapters.runtime.base import (
    ChartRelease,
    Charts,
    ClusterAccess,
    DatabaseConnection,
    Databases,
    Deployed,
    EnvironmentScoped,
    FailureReason,
    GitAccess,
    HealthSpec,
    JobResult,
    LogLine,
    PortSpec,
    ReleaseState,
    RunningState,
    RunStatus,
    Runtime,
    RuntimeFailure,
    RuntimeOpener,
    Workload,
)

__all__ = [
    "ChartRelease",
    "Charts",
    "ClusterAccess",
    "DatabaseConnection",
    "Databases",
    "Deployed",
    "EnvironmentScoped",
    "FailureReason",
    "GitAccess",
    "HealthSpec",
    "JobResult",
    "LogLine",
    "PortSpec",
    "ReleaseState",
    "RunStatus",
    "RunningState",
    "Runtime",
    "RuntimeFailure",
    "RuntimeOpener",
    "Workload",
]
