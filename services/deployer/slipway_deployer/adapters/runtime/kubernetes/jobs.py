"""One run of a job on Kubernetes: a Job (never retried, killed by the cluster at its deadline
too), watched to completion, its exit code and outputs read from its pod, then deleted (its pod
with it). The outputs are the container's termination message, which the kubelet reads from
``OUTPUT_PATH`` (what ``/slipway/output.json`` is on the local runtime); kwok writes none."""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable

import structlog

from slipway_deployer.adapters.runtime.base import (
    FailureReason,
    JobResult,
    RuntimeFailure,
    Workload,
)
from slipway_deployer.adapters.runtime.kubernetes import render, rollout
from slipway_deployer.adapters.runtime.kubernetes.client import KubeClient
from slipway_deployer.adapters.runtime.kubernetes.names import Manifest
from slipway_deployer.adapters.runtime.kubernetes.render import RenderOptions

# validates and applies the objects (the runtime's, paced, the namespace once): the Job last
Apply = Callable[[list[Manifest]], Awaitable[list[Manifest]]]

log = structlog.get_logger(__name__)


async def run_job(
    client: KubeClient,
    apply: Apply,
    options: RenderOptions,
    workload: Workload,
    *,
    timeout_s: float,
) -> JobResult:
    manifests = render.job_objects(
        workload, options, run_id=secrets.token_hex(4), timeout_s=timeout_s
    )
    started = time.monotonic()
    job = (await apply(manifests))[-1]
    namespace, name = job["metadata"]["namespace"], job["metadata"]["name"]
    log.info("runtime.kubernetes.job_started", service_id=workload.service_id, job=name)
    try:
        code, output = await _outcome(client, namespace, name, timeout_s)
    finally:
        await client.delete("Job", namespace, name)
    return JobResult(code, output, time.monotonic() - started)


async def _outcome(
    client: KubeClient, namespace: str, name: str, timeout_s: float
) -> tuple[int, str | None]:
    """The job's exit code and outputs once it finished; TIMEOUT after ``timeout_s``."""
    try:
        job = await client.watch_until(
            "Job",
            namespace,
            name,
            lambda found: rollout.job_finished(found) is not None,
            timeout_s=timeout_s,
        )
    except TimeoutError:
        message = f"the job did not finish within {timeout_s:g} s"
        raise RuntimeFailure(FailureReason.TIMEOUT, message) from None
    pods = await client.list("Pod", namespace, labels=f"job-name={name}")
    code, output = next(
        (found for found in map(rollout.terminated, pods) if found[0] is not None),
        (None, None),
    )
    if code is None:  # no container status (the pod was never run): the job's own verdict
        code = 0 if rollout.job_finished(job) else 1
    return code, output
