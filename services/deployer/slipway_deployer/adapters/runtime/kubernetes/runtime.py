"""The ``kubernetes`` runtime: services as Deployments (+ Service, Ingress, Secrets) and jobs as
Jobs in one namespace per environment of a self-managed cluster (``render`` says what objects).

Invariants:
- Every object is written by server-side apply with the ``slipway`` field manager, forced: a
  re-apply of an unchanged workload changes nothing (resourceVersions kept) and manual drift is
  taken back. Stop and restart are merge patches by other managers (``slipway-stop``,
  ``slipway-restart``), so they never drop what ``slipway`` applied.
- Every rendered manifest is validated against the cluster version's schemas
  (kubernetes-validate, offline) before anything is applied: nothing half-applied from a bad
  render.
- Rollouts are watched (the watch API), never polled: ``apply`` and ``restart`` return once the
  Deployment is rolled out, else raise ``RuntimeFailure`` with the reason the pods give
  (``rollout.diagnose``) within ``rollout_timeout_s``. Cancelling the caller closes the watches.
- Starts are paced here, not by the deployer's start slots (``PacedByCluster``): at most
  ``start_slots`` validations and applies at once, and no slot held while a rollout is watched
  (the cluster does that work): a rollout that never gets ready delays no other service.
- Running services are watched, not polled: ``status`` reads the Deployments from one watch of
  the cluster (``Informer``); a pod LIST only while a service is not ready (for the reason),
  at most once per Deployment change or ``pods_recheck_s``.
- The namespace and the registry's pull Secret are applied once per environment per deployment
  (``Namespaces``; ``begin_deployment`` renews them), not once per service.
- Objects are found by their labels (a service's id), so a new process finds what an earlier one
  applied; names are remembered only as a shortcut.
- The cluster unreachable or refusing the credentials is ``RuntimeFailure(CLUSTER_UNREACHABLE)``
  (``client``); never a fallback elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from slipway_deployer.adapters.runtime.base import (
    ChartRelease,
    Deployed,
    FailureReason,
    JobResult,
    LogLine,
    ReleaseState,
    RunningState,
    RunStatus,
    RuntimeFailure,
    Workload,
)
from slipway_deployer.adapters.runtime.kubernetes import jobs, render, rollout
from slipway_deployer.adapters.runtime.kubernetes.client import KubeClient
from slipway_deployer.adapters.runtime.kubernetes.helm import Helm, HelmOptions, KubeAccess
from slipway_deployer.adapters.runtime.kubernetes.informer import Informer
from slipway_deployer.adapters.runtime.kubernetes.names import (
    ANNOTATION_REPLICAS,
    ANNOTATION_URLS,
    CONTAINER,
    LABEL_MANAGED_BY,
    LABEL_SERVICE,
    LABEL_TEMPLATE,
    Manifest,
    namespace_name,
)
from slipway_deployer.adapters.runtime.kubernetes.namespaces import Namespaces
from slipway_deployer.adapters.runtime.kubernetes.render import RenderOptions
from slipway_deployer.adapters.runtime.kubernetes.validate import Validator

log = structlog.get_logger(__name__)

STOP_MANAGER = "slipway-stop"
RESTART_MANAGER = "slipway-restart"
_RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"  # kubectl rollout restart's annotation
# what a service leaves in its namespace, deleted in this order (what routes to it first)
_SERVICE_KINDS = ("Ingress", "Service", "Deployment", "CronJob", "Job", "Secret")


@dataclass(frozen=True)
class KubernetesSettings:
    """How Slipway uses one cluster (from the cluster's settings and the deployer's config)."""

    render: RenderOptions = field(default_factory=RenderOptions)
    rollout_timeout_s: float = 300.0
    stop_timeout_s: float = 60.0
    namespace_delete_timeout_s: float = 120.0
    request_timeout_s: float = 30.0
    # to the API server, watches included: two per rollout being watched, one for the running
    # services' state; a hundred environments of three services deploying at once hold ~600
    max_connections: int = 1024
    # validations and applies at once (the rollouts that follow are watched without a slot)
    start_slots: int = 32
    # how often the pods of a service that stays unready are listed again for the reason
    pods_recheck_s: float = 30.0
    kubernetes_version: str | None = None  # the schemas to validate against; None: the server's
    validate: bool = True
    log_tail_lines: int = 200
    helm: HelmOptions = field(default_factory=HelmOptions)  # Helm services (the helm CLI)


@dataclass(frozen=True)
class _Where:
    namespace: str
    name: str


@dataclass(frozen=True)
class _Pods:
    """A service's pods as last listed (its Deployment unready), for the reason and restarts."""

    deployment_version: str
    at: float
    pods: list[Manifest]


class KubernetesRuntime:
    def __init__(
        self,
        client: KubeClient,
        settings: KubernetesSettings | None = None,
        *,
        validator: Validator | None = None,
        helm: Helm | None = None,
        namespaces: Namespaces | None = None,
    ) -> None:
        self._client = client
        self._settings = settings or KubernetesSettings()
        self._validator = validator or Validator(client, self._settings.kubernetes_version)
        self._helm = helm  # None: made without the cluster's access, Helm services refused
        self._namespaces = namespaces or Namespaces(client)
        self._where: dict[str, _Where] = {}  # service id -> its Deployment (a shortcut)
        self._jobs: dict[str, RunningState] = {}
        self._applying = asyncio.Semaphore(self._settings.start_slots)
        self._deployments = Informer(client, "Deployment", labels=f"{LABEL_MANAGED_BY}=slipway")
        self._pods: dict[str, _Pods] = {}  # service id -> its pods, while it is unready

    @property
    def start_slots(self) -> int:
        """``PacedByCluster``: how many starts it applies at once (it paces them itself)."""
        return self._settings.start_slots

    @classmethod
    def from_access(
        cls,
        *,
        api_url: str,
        token: str | None,
        ca_cert: str | None,
        insecure: bool = False,
        settings: KubernetesSettings | None = None,
    ) -> KubernetesRuntime:
        """The runtime of the cluster at ``api_url`` (a bearer ``token``, the CA as PEM; None:
        the system's trust store). Connects lazily: call ``ping`` to know it is reachable."""
        settings = settings or KubernetesSettings()
        client = KubeClient.connect(
            api_url=api_url,
            token=token,
            ca_cert=ca_cert,
            insecure=insecure,
            request_timeout_s=settings.request_timeout_s,
            max_connections=settings.max_connections,
        )
        access = KubeAccess(api_url, token, ca_cert, insecure)
        return cls(client, settings, helm=Helm(access, client, settings.helm))

    async def ping(self) -> str:
        """The API server's version (``v1.35.4``); raises CLUSTER_UNREACHABLE when it cannot
        be reached or refuses the credentials."""
        version = await self._client.version()
        return str(version.get("gitVersion", ""))

    # -- the Runtime protocol --------------------------------------------------------------------

    async def apply(self, workload: Workload) -> Deployed:
        """A service, rolled out; or a cron job (``workload.cron``), scheduled by the cluster."""
        if workload.cron is not None:
            return await self._schedule(workload)
        options = self._settings.render
        manifests = render.application(workload, options)
        applied = await self._apply_objects(manifests)
        deployment = next(m for m in applied if m["kind"] == "Deployment")
        self._deployments.offer(deployment)
        where = _Where(deployment["metadata"]["namespace"], deployment["metadata"]["name"])
        self._where[workload.service_id] = where
        template = deployment["spec"]["template"]["metadata"]["labels"][LABEL_TEMPLATE]
        log.info(
            "runtime.kubernetes.applied",
            service_id=workload.service_id,
            namespace=where.namespace,
            name=where.name,
            image=workload.image,
            resource_version=deployment["metadata"].get("resourceVersion"),
        )
        await self._await_rollout(workload.service_id, where, template)
        default = workload.default_port
        return Deployed(
            workload.service_id,
            host_ports={},
            urls=render.urls(workload, options),
            default_port=default.port if default else None,
        )

    async def stop(self, service_id: str) -> None:
        """Scaled to zero (returning once no pod is left); a cron job suspended."""
        where = await self._locate(service_id)
        if where is None:
            if (namespace := await self._namespace_of(service_id)) is not None:
                await self._suspend_cron_jobs(service_id, namespace, suspend=True)
            return
        body = {"spec": {"replicas": 0}}
        patched = await self._client.patch(
            "Deployment", where.namespace, where.name, body, manager=STOP_MANAGER
        )
        self._deployments.offer(patched)  # what is waited on is this spec, not an older one
        await self._watch_deployment(
            service_id, where, rollout.deployment_scaled_down, self._settings.stop_timeout_s
        )
        log.info("runtime.kubernetes.stopped", service_id=service_id, namespace=where.namespace)

    async def restart(self, service_id: str) -> None:
        """A rollout restart, and a stopped service scaled back to what it was applied with;
        a suspended cron job resumed."""
        where = await self._locate(service_id)
        if where is None:
            namespace = await self._namespace_of(service_id)
            if namespace is None or not await self._suspend_cron_jobs(
                service_id, namespace, suspend=False
            ):
                raise _not_found(service_id)
            return
        deployment = await self._client.get("Deployment", where.namespace, where.name)
        if deployment is None:
            raise _not_found(service_id)
        meta = deployment["metadata"]
        replicas = int((meta.get("annotations") or {}).get(ANNOTATION_REPLICAS, "1"))
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "spec": {
                "replicas": replicas,
                "template": {"metadata": {"annotations": {_RESTARTED_AT: now}}},
            }
        }
        patched = await self._client.patch(
            "Deployment", where.namespace, where.name, body, manager=RESTART_MANAGER
        )
        self._deployments.offer(patched)  # what is waited on is this spec, not an older one
        template = deployment["spec"]["template"]["metadata"]["labels"][LABEL_TEMPLATE]
        await self._await_rollout(service_id, where, template)

    async def delete(self, service_id: str) -> None:
        """Every object of the service (its namespace stays: ``delete_environment``)."""
        namespace = await self._namespace_of(service_id)
        self._where.pop(service_id, None)
        self._jobs.pop(service_id, None)
        self._pods.pop(service_id, None)
        if namespace is None:
            return
        selector = f"{LABEL_SERVICE}={service_id}"
        for kind in _SERVICE_KINDS:
            for item in await self._client.list(
                kind, namespace, labels=selector, metadata_only=True
            ):
                await self._client.delete(kind, namespace, item["metadata"]["name"])
        self._deployments.forget(service_id)
        log.info("runtime.kubernetes.deleted", service_id=service_id, namespace=namespace)

    async def status(self, service_id: str) -> RunningState:
        """A service's state from the watch of the cluster's Deployments (no request), its
        pods listed only while it is not ready; a job's or a cron job's as before."""
        if not await self._deployments.ready(self._settings.request_timeout_s):
            why = "the watch of the cluster's Deployments is not connected"
            raise RuntimeFailure(FailureReason.CLUSTER_UNREACHABLE, why)
        found = self._deployments.get(service_id)
        if found is None:
            self._pods.pop(service_id, None)
            if service_id in self._jobs:
                return self._jobs[service_id]
            return await self._cron_status(service_id)
        pods = await self._pods_of(service_id, found)
        state, message = rollout.run_status(found, pods)
        annotations = found["metadata"].get("annotations") or {}
        urls = {int(k): v for k, v in json.loads(annotations.get(ANNOTATION_URLS, "{}")).items()}
        return RunningState(state, rollout.restarts(pods), urls, message)

    async def _pods_of(self, service_id: str, deployment: Manifest) -> list[Manifest]:
        """The pods of a Deployment that is not ready (listed again once it changed, or after
        ``pods_recheck_s``); a ready or stopped one's last listed pods (for restarts)."""
        known = self._pods.get(service_id)
        settled = rollout.deployment_ready(deployment) or not rollout.wanted(deployment)
        if settled:
            return known.pods if known else []
        version = str(deployment["metadata"].get("resourceVersion", ""))
        now = time.monotonic()
        fresh = known and known.deployment_version == version
        if known and fresh and now - known.at < self._settings.pods_recheck_s:
            return known.pods
        namespace = deployment["metadata"]["namespace"]
        selector = f"{LABEL_SERVICE}={service_id}"
        pods = await self._client.list("Pod", namespace, labels=selector)
        self._pods[service_id] = _Pods(version, now, pods)
        return pods

    async def logs(self, service_id: str) -> AsyncIterator[LogLine]:
        """The newest pod's log (a service's or a job's) from the pod log API, followed
        (``KubeClient.pod_logs``)."""
        namespace = await self._namespace_of(service_id)
        if namespace is None:
            raise _not_found(service_id)
        pods = await self._client.list("Pod", namespace, labels=f"{LABEL_SERVICE}={service_id}")
        if not pods:
            return
        pod = max(pods, key=lambda p: str(p["metadata"].get("creationTimestamp", "")))
        async for line in self._client.pod_logs(
            namespace,
            pod["metadata"]["name"],
            container=CONTAINER,
            tail_lines=self._settings.log_tail_lines,
        ):
            yield line

    async def run_job(self, workload: Workload, *, timeout_s: float) -> JobResult:
        self._jobs[workload.service_id] = RunningState(RunStatus.RUNNING, 0, {})
        try:
            result = await jobs.run_job(
                self._client,
                self._apply_objects,
                self._settings.render,
                workload,
                timeout_s=timeout_s,
            )
        except RuntimeFailure as failure:
            self._jobs[workload.service_id] = RunningState(RunStatus.ERROR, 0, {}, failure.message)
            raise
        done = RunStatus.COMPLETED if result.exit_code == 0 else RunStatus.ERROR
        message = f"exited with code {result.exit_code}"
        self._jobs[workload.service_id] = RunningState(done, 0, {}, message)
        return result

    async def adopt(self) -> list[str]:
        """The services an earlier process applied (their Deployments, in every namespace)."""
        found = await self._client.list("Deployment", labels=f"{LABEL_MANAGED_BY}=slipway")
        for item in found:
            meta = item["metadata"]
            service_id = (meta.get("labels") or {}).get(LABEL_SERVICE)
            if service_id:
                self._where[service_id] = _Where(meta["namespace"], meta["name"])
        return sorted(self._where)

    async def close(self) -> None:
        await self._deployments.close()
        await self._client.close()

    # -- Helm services (the Charts port) ---------------------------------------------------------

    async def install_chart(self, release: ChartRelease) -> ReleaseState:
        return await self._charts().install(release)

    async def uninstall_chart(self, environment_id: str, release_name: str) -> None:
        await self._charts().uninstall(environment_id, release_name)

    async def stop_chart(self, environment_id: str, release_name: str) -> None:
        await self._charts().stop(environment_id, release_name)

    async def restart_chart(self, environment_id: str, release_name: str) -> None:
        await self._charts().restart(environment_id, release_name)

    async def chart_status(self, environment_id: str, release_name: str) -> ReleaseState | None:
        return await self._charts().status(environment_id, release_name)

    def _charts(self) -> Helm:
        if self._helm is None:
            message = "this runtime was made without helm: Helm services cannot be installed"
            raise RuntimeFailure(FailureReason.RUNTIME_NOT_AVAILABLE, message)
        return self._helm

    # -- beyond the protocol ---------------------------------------------------------------------

    def begin_deployment(self, environment_id: str) -> None:
        """``EnvironmentScoped``: a deployment of the environment begins; its first apply
        applies the namespace and the pull Secret again (drift taken back), once."""
        self._namespaces.renew(namespace_name(environment_id))

    async def delete_environment(self, environment_id: str) -> None:
        """The environment's namespace and everything in it (volumes included), returning once
        the namespace is gone. Idempotent."""
        namespace = namespace_name(environment_id)
        self._namespaces.renew(namespace)
        for service_id, where in list(self._where.items()):
            if where.namespace == namespace:
                del self._where[service_id]
        self._deployments.forget_namespace(namespace)
        if not await self._client.delete("Namespace", None, namespace):
            return
        timeout_s = self._settings.namespace_delete_timeout_s
        try:
            async with asyncio.timeout(timeout_s):
                async for kind, _ in self._client.watch(
                    "Namespace", None, fields=f"metadata.name={namespace}", timeout_s=timeout_s
                ):
                    if kind == "DELETED":
                        break
        except TimeoutError:
            message = f"the namespace {namespace} was not gone within {timeout_s:g} s"
            raise RuntimeFailure(FailureReason.TIMEOUT, message) from None
        log.info("runtime.kubernetes.environment_deleted", namespace=namespace)

    # -- applying and watching -------------------------------------------------------------------

    async def _await_rollout(self, service_id: str, where: _Where, template: str) -> None:
        timeout_s = self._settings.rollout_timeout_s
        seen: dict[str, rollout.Diagnosis] = {}

        async def watch_pods() -> None:
            selector = f"{LABEL_SERVICE}={service_id},{LABEL_TEMPLATE}={template}"
            async for kind, pod in self._client.watch(
                "Pod", where.namespace, labels=selector, timeout_s=timeout_s
            ):
                name = pod["metadata"]["name"]
                diagnosis = None if kind == "DELETED" else rollout.diagnose(pod)
                seen.pop(name, None)
                if diagnosis is not None:
                    seen[name] = diagnosis
                    if diagnosis.final:
                        raise RuntimeFailure(diagnosis.reason, f"{name}: {diagnosis.message}")

        rolled_out = self._watch_deployment(service_id, where, rollout.deployment_ready, timeout_s)
        try:
            await _until_first(rolled_out, watch_pods())
        except TimeoutError:
            raise await self._timed_out(where, seen, timeout_s) from None

    async def _watch_deployment(
        self, service_id: str, where: _Where, done: Callable[[Manifest], bool], timeout_s: float
    ) -> None:
        """Until ``done``: through the cluster-wide watch when it is live (no request of its
        own), else a watch of this Deployment; TimeoutError after ``timeout_s``."""
        if await self._deployments.ready(self._settings.request_timeout_s):
            async with asyncio.timeout(timeout_s):
                await self._deployments.wait_until(service_id, done, stuck=rollout.deployment_stuck)
            return
        found = await self._client.watch_until(
            "Deployment",
            where.namespace,
            where.name,
            done,
            timeout_s=timeout_s,
            stuck=rollout.deployment_stuck,
        )
        self._deployments.offer(found)  # a status read next is never older than this

    async def _apply_objects(self, manifests: list[Manifest]) -> list[Manifest]:
        """Validated and applied within a start slot (the slot is not held afterwards)."""
        async with self._applying:
            await self._validator.check(manifests)
            return await self._namespaces.apply(manifests)

    async def _timed_out(
        self, where: _Where, seen: dict[str, rollout.Diagnosis], timeout_s: float
    ) -> RuntimeFailure:
        """The failure of a rollout that did not finish: the pods' last complaint and the
        cluster's latest warnings about them."""
        head = f"{where.name} was not ready within {timeout_s:g} s"
        if not seen:
            return RuntimeFailure(FailureReason.TIMEOUT, head)
        events = await self._client.list("Event", where.namespace, fields="involvedObject.kind=Pod")
        warnings = rollout.warning_events(events, set(seen))
        latest = list(seen.values())[-1]
        detail = "; ".join([latest.message, *warnings])
        return RuntimeFailure(latest.reason, f"{head}: {detail}")

    async def _cron_status(self, service_id: str) -> RunningState:
        namespace = await self._namespace_of(service_id)
        selector = f"{LABEL_SERVICE}={service_id}"
        found = await self._client.list("CronJob", namespace, labels=selector) if namespace else []
        if not found:
            if self._helm is not None and (release := await self._helm.service_status(service_id)):
                return release  # a Helm service: its release's revision
            raise _not_found(service_id)
        state, message = rollout.cron_status(found[0])
        return RunningState(state, 0, {}, message)

    async def _schedule(self, workload: Workload) -> Deployed:
        manifests = render.cron_job_objects(workload, self._settings.render)
        applied = await self._apply_objects(manifests)
        log.info(
            "runtime.kubernetes.scheduled",
            service_id=workload.service_id,
            namespace=applied[-1]["metadata"]["namespace"],
            name=applied[-1]["metadata"]["name"],
            image=workload.image,
        )
        return Deployed(workload.service_id, host_ports={}, urls={}, default_port=None)

    async def _suspend_cron_jobs(self, service_id: str, namespace: str, *, suspend: bool) -> bool:
        """Whether the service had a cron job to (un)suspend."""
        selector = f"{LABEL_SERVICE}={service_id}"
        found = await self._client.list("CronJob", namespace, labels=selector)
        manager = STOP_MANAGER if suspend else RESTART_MANAGER
        for item in found:
            body = {"spec": {"suspend": suspend}}
            name = item["metadata"]["name"]
            await self._client.patch("CronJob", namespace, name, body, manager=manager)
        return bool(found)

    # -- finding a service's objects -------------------------------------------------------------

    async def _locate(self, service_id: str) -> _Where | None:
        if (where := self._where.get(service_id)) is not None:
            return where
        found = await self._client.list("Deployment", labels=f"{LABEL_SERVICE}={service_id}")
        if not found:
            return None
        meta = found[0]["metadata"]
        where = self._where[service_id] = _Where(meta["namespace"], meta["name"])
        return where

    async def _require(self, service_id: str) -> _Where:
        where = await self._locate(service_id)
        if where is None:
            raise _not_found(service_id)
        return where

    async def _namespace_of(self, service_id: str) -> str | None:
        """Where any object of the service is: its variables' Secret exists for jobs too."""
        if (where := self._where.get(service_id)) is not None:
            return where.namespace
        selector = f"{LABEL_SERVICE}={service_id}"
        found = await self._client.list("Secret", labels=selector, metadata_only=True)
        return found[0]["metadata"]["namespace"] if found else None


async def _until_first(main: Coroutine[Any, Any, None], watcher: Coroutine[Any, Any, None]) -> None:
    """``main``'s outcome, unless ``watcher`` fails first (its failure wins). A watcher that just
    ends leaves ``main`` to finish."""
    main_task, watcher_task = asyncio.ensure_future(main), asyncio.ensure_future(watcher)
    try:
        done, _ = await asyncio.wait({main_task, watcher_task}, return_when=asyncio.FIRST_COMPLETED)
        if watcher_task in done and (error := watcher_task.exception()) is not None:
            raise error
        await main_task
    finally:
        for task in (main_task, watcher_task):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def _not_found(service_id: str) -> RuntimeFailure:
    return RuntimeFailure(FailureReason.NOT_FOUND, f"no service {service_id!r} in this cluster")
