"""Reading rollouts: pure functions from the objects a watch delivers to a verdict.

- A Deployment is rolled out when the controller has seen its latest spec
  (``observedGeneration``), every replica runs the new template (``updatedReplicas``), no old
  replica is left (``replicas``) and the new ones are available (``kubectl rollout status``'s
  rule).
- A pod tells why it is not ready: a pull that keeps failing and a crash loop are final (waiting
  longer does not fix an image name or a crashing app); unschedulable and a failing readiness
  probe may still resolve (a node added, a slow start), so they are remembered and become the
  reason only when the rollout times out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from slipway_deployer.adapters.runtime.base import FailureReason, RunStatus

Manifest = dict[str, Any]

_PULL = {"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull"}
_CONFIG = {"CreateContainerConfigError", "CreateContainerError", "RunContainerError"}


@dataclass(frozen=True)
class Diagnosis:
    reason: FailureReason
    message: str
    final: bool  # waiting cannot fix it


def deployment_ready(deployment: Manifest) -> bool:
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    generation = deployment.get("metadata", {}).get("generation", 0)
    wanted = int(spec.get("replicas", 1))
    return (
        status.get("observedGeneration", 0) >= generation
        and status.get("updatedReplicas", 0) >= wanted
        and status.get("replicas", 0) <= wanted
        and status.get("availableReplicas", 0) >= wanted
    )


def wanted(deployment: Manifest) -> int:
    """The replicas its spec asks for (0: stopped)."""
    return int((deployment.get("spec") or {}).get("replicas", 1))


def deployment_scaled_down(deployment: Manifest) -> bool:
    status = deployment.get("status") or {}
    return not status.get("replicas", 0)


def deployment_stuck(deployment: Manifest) -> str | None:
    """The controller's own verdict: its progress deadline passed."""
    for condition in (deployment.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Progressing" and condition.get("status") == "False":
            return str(condition.get("message") or condition.get("reason"))
    return None


def diagnose(pod: Manifest) -> Diagnosis | None:
    """Why this pod is not (yet) ready, if it says."""
    status = pod.get("status") or {}
    for container in status.get("containerStatuses") or []:
        waiting = (container.get("state") or {}).get("waiting") or {}
        reason, message = waiting.get("reason"), waiting.get("message") or ""
        if reason in _PULL:
            text = f"{reason}: the image {container.get('image')} could not be pulled"
            return Diagnosis(FailureReason.PULL_FAILED, _join(text, message), final=True)
        if reason == "CrashLoopBackOff":
            return Diagnosis(FailureReason.CRASHED, _crash_message(container), final=True)
        if reason in _CONFIG:
            return Diagnosis(FailureReason.START_FAILED, _join(str(reason), message), final=True)
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            message = f"{condition.get('reason', 'Unschedulable')}: {condition.get('message', '')}"
            return Diagnosis(FailureReason.START_FAILED, message.strip(": "), final=False)
    running = [
        c for c in status.get("containerStatuses") or [] if "running" in (c.get("state") or {})
    ]
    if running and not all(c.get("ready") for c in running):
        message = "the container runs but its readiness probe does not pass"
        return Diagnosis(FailureReason.HEALTHCHECK_FAILED, message, final=False)
    return None


def restarts(pods: list[Manifest]) -> int:
    return sum(
        int(c.get("restartCount", 0))
        for pod in pods
        for c in (pod.get("status") or {}).get("containerStatuses") or []
    )


def run_status(deployment: Manifest, pods: list[Manifest]) -> tuple[RunStatus, str | None]:
    """A service's state from its Deployment (and its pods' complaints)."""
    wanted = int((deployment.get("spec") or {}).get("replicas", 1))
    if wanted == 0:
        if deployment_scaled_down(deployment):
            return RunStatus.STOPPED, "scaled to zero"
        return RunStatus.STOPPING, "scaling to zero"
    if deployment_ready(deployment):
        return RunStatus.RUNNING, None
    found = [d for d in (diagnose(p) for p in pods) if d is not None]
    if any(d.reason is FailureReason.CRASHED for d in found):
        return RunStatus.WARNING, next(
            d.message for d in found if d.reason is FailureReason.CRASHED
        )
    if any(d.final for d in found):
        return RunStatus.ERROR, next(d.message for d in found if d.final)
    return RunStatus.STARTING, found[0].message if found else None


def cron_status(cron_job: Manifest) -> tuple[RunStatus, str | None]:
    """Suspended: STOPPED; else RUNNING (scheduled), with when it last ran."""
    if (cron_job.get("spec") or {}).get("suspend"):
        return RunStatus.STOPPED, "suspended"
    last = (cron_job.get("status") or {}).get("lastScheduleTime")
    return RunStatus.RUNNING, f"last run scheduled at {last}" if last else "scheduled, not run yet"


def job_finished(job: Manifest) -> bool | None:
    """True: complete; False: failed; None: still running."""
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("status") != "True":
            continue
        if condition.get("type") == "Complete":
            return True
        if condition.get("type") == "Failed":
            return False
    return None


def job_failure(job: Manifest) -> str:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Failed" and condition.get("status") == "True":
            return str(condition.get("message") or condition.get("reason") or "failed")
    return "failed"


def terminated(pod: Manifest) -> tuple[int | None, str | None]:
    """The exit code and termination message (a job's outputs) of the pod's container."""
    for container in (pod.get("status") or {}).get("containerStatuses") or []:
        ended = (container.get("state") or {}).get("terminated")
        if ended:
            return int(ended.get("exitCode", 0)), ended.get("message") or None
    return None, None


def warning_events(events: list[Manifest], pod_names: set[str]) -> list[str]:
    """The latest warnings about the given pods (``Unhealthy``, ``FailedScheduling``...),
    newest last, said as ``reason: message``."""
    about = [
        e
        for e in events
        if e.get("type") == "Warning" and (e.get("involvedObject") or {}).get("name") in pod_names
    ]
    about.sort(key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))
    return [f"{e.get('reason')}: {e.get('message', '').strip()}" for e in about[-3:]]


def _crash_message(container: Manifest) -> str:
    last = (container.get("lastState") or {}).get("terminated") or {}
    code = last.get("exitCode")
    exited = f" (last exit code {code})" if code is not None else ""
    return f"CrashLoopBackOff: the container keeps exiting{exited}"


def _join(head: str, detail: str) -> str:
    return f"{head} ({detail})" if detail else head
