"""Runtimes: where deployed services run (DESIGN.md §4). ``base`` is the port every runtime
implements; ``local`` runs images on this machine with buildah."""

from slipway_deployer.adapters.runtime.base import (
    Deployed,
    FailureReason,
    HealthSpec,
    JobResult,
    LogLine,
    PortSpec,
    RunningState,
    RunStatus,
    Runtime,
    RuntimeFailure,
    Workload,
)

__all__ = [
    "Deployed",
    "FailureReason",
    "HealthSpec",
    "JobResult",
    "LogLine",
    "PortSpec",
    "RunStatus",
    "RunningState",
    "Runtime",
    "RuntimeFailure",
    "Workload",
]
