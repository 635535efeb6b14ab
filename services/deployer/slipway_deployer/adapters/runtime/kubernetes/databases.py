"""Database services on a Kubernetes cluster (the ``Databases`` port): PostgreSQL as a
StatefulSet with its volume claim, a headless Service and its password's Secret
(``render_database``), applied and watched like the runtime's services.

Invariants:
- Server-side apply as ``slipway`` (an unchanged re-apply changes nothing); stop and restart are
  merge patches by other managers, as in ``runtime``.
- The password is generated once and lives in the Secret only: a re-apply reads it back, so the
  connection the services were given stays valid.
- ``apply`` returns once the StatefulSet's pod is Ready (its readiness probe is ``pg_isready``):
  the deployer does not connect into the cluster's network itself.
- ``stop`` scales to zero and keeps the claim (the data); ``delete`` removes the claim too.
- Paced like the runtime's services (``PacedByCluster``): ``start_slots`` validations and applies
  at once, none held while the StatefulSet is watched; the namespace applied once per
  environment per deployment (``Namespaces``, shared with the runtime).
- A database lives in its environment's namespace (``apply``'s ``environment_id``, which the
  deployment's step gives); without one (a direct caller) it goes to ``slipway-databases``.
  The other calls find it by its service label, wherever it is.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from slipway_deployer.adapters.runtime.base import (
    DatabaseConnection,
    FailureReason,
    LogLine,
    RunningState,
    RunStatus,
    RuntimeFailure,
)
from slipway_deployer.adapters.runtime.kubernetes import render_database as render
from slipway_deployer.adapters.runtime.kubernetes import rollout
from slipway_deployer.adapters.runtime.kubernetes.client import KubeClient
from slipway_deployer.adapters.runtime.kubernetes.names import (
    LABEL_MANAGED_BY,
    LABEL_SERVICE,
    Manifest,
)
from slipway_deployer.adapters.runtime.kubernetes.namespaces import Namespaces
from slipway_deployer.adapters.runtime.kubernetes.render_database import (
    DatabaseOptions,
    DatabaseSpec,
)
from slipway_deployer.adapters.runtime.kubernetes.validate import Validator

log = structlog.get_logger(__name__)

STOP_MANAGER = "slipway-stop"
RESTART_MANAGER = "slipway-restart"
_KINDS = ("StatefulSet", "Service", "Secret", "PersistentVolumeClaim")


@dataclass(frozen=True)
class _Found:
    namespace: str
    name: str
    user: str


class KubernetesDatabases:
    def __init__(
        self,
        client: KubeClient,
        validator: Validator,
        *,
        options: DatabaseOptions | None = None,
        ready_timeout_s: float = 300.0,
        log_tail_lines: int = 200,
        start_slots: int = 32,
        namespaces: Namespaces | None = None,
    ) -> None:
        self._client = client
        self._validator = validator
        self._options = options or DatabaseOptions()
        self._timeout_s = ready_timeout_s
        self._tail = log_tail_lines
        self._applying = asyncio.Semaphore(start_slots)
        self._namespaces = namespaces or Namespaces(client)
        self.start_slots = start_slots  # ``PacedByCluster``: it paces its starts itself

    async def apply(
        self,
        service_id: str,
        *,
        engine: str = render.ENGINE,
        version: str | None = None,
        name: str = "app",
        environment_id: str | None = None,
    ) -> DatabaseConnection:
        render.check(engine, name)
        spec = DatabaseSpec(
            service_id, name, version or self._options.default_version, environment_id
        )
        password = await self._password(spec.namespace, spec.object_name)
        manifests = render.database(spec, self._options, password=password)
        async with self._applying:  # not held while the StatefulSet is watched
            await self._validator.check(manifests)
            await self._namespaces.apply(manifests)
        log.info("database.kubernetes.applied", service_id=service_id, namespace=spec.namespace)
        await self._await_ready(_Found(spec.namespace, spec.object_name, name), service_id)
        return DatabaseConnection(spec.host, render.PORT, name, name, password)

    async def stop(self, service_id: str) -> None:
        found = await self._find(service_id)
        if found is None:
            return
        body = {"spec": {"replicas": 0}}
        await self._client.patch(
            "StatefulSet", found.namespace, found.name, body, manager=STOP_MANAGER
        )
        await self._client.watch_until(
            "StatefulSet",
            found.namespace,
            found.name,
            lambda s: not (s.get("status") or {}).get("replicas"),
            timeout_s=self._timeout_s,
        )

    async def restart(self, service_id: str) -> DatabaseConnection:
        found = await self._require(service_id)
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        restarted = {"kubectl.kubernetes.io/restartedAt": now}
        body = {"spec": {"replicas": 1, "template": {"metadata": {"annotations": restarted}}}}
        await self._client.patch(
            "StatefulSet", found.namespace, found.name, body, manager=RESTART_MANAGER
        )
        await self._await_ready(found, service_id)
        password = await self._password(found.namespace, found.name)
        host = f"{found.name}.{found.namespace}.svc"
        return DatabaseConnection(host, render.PORT, found.user, found.user, password)

    async def delete(self, service_id: str) -> None:
        found = await self._find(service_id)
        if found is None:
            return
        selector = f"{LABEL_SERVICE}={service_id}"
        for kind in _KINDS:
            for item in await self._client.list(
                kind, found.namespace, labels=selector, metadata_only=True
            ):
                await self._client.delete(kind, found.namespace, item["metadata"]["name"])
        log.info("database.kubernetes.deleted", service_id=service_id)

    async def status(self, service_id: str) -> RunningState:
        found = await self._require(service_id)
        stateful_set = await self._client.get("StatefulSet", found.namespace, found.name)
        if stateful_set is None:
            raise _not_found(service_id)
        pods = await self._client.list(
            "Pod", found.namespace, labels=f"{LABEL_SERVICE}={service_id}"
        )
        state, message = _state(stateful_set, pods)
        return RunningState(state, rollout.restarts(pods), {}, message)

    async def logs(self, service_id: str) -> AsyncIterator[LogLine]:
        found = await self._require(service_id)
        async for line in self._client.pod_logs(
            found.namespace, f"{found.name}-0", container="postgres", tail_lines=self._tail
        ):
            yield line

    async def adopt(self) -> list[str]:
        found = await self._client.list("StatefulSet", labels=f"{LABEL_MANAGED_BY}=slipway")
        return sorted(
            service_id
            for item in found
            if (service_id := (item["metadata"].get("labels") or {}).get(LABEL_SERVICE))
        )

    # -- helpers ---------------------------------------------------------------------------------

    async def _password(self, namespace: str, name: str) -> str:
        """The database's password: the one its Secret holds, else a new one."""
        secret = await self._client.get("Secret", namespace, f"{name}-db")
        stored = ((secret or {}).get("data") or {}).get(render.PASSWORD_KEY)
        if stored:
            return base64.b64decode(stored).decode()
        return secrets.token_urlsafe(24)

    async def _await_ready(self, found: _Found, service_id: str) -> None:
        try:
            await self._client.watch_until(
                "StatefulSet",
                found.namespace,
                found.name,
                _stateful_set_ready,
                timeout_s=self._timeout_s,
            )
        except TimeoutError:
            pods = await self._client.list(
                "Pod", found.namespace, labels=f"{LABEL_SERVICE}={service_id}"
            )
            why = next((d for d in map(rollout.diagnose, pods) if d is not None), None)
            head = f"the database {found.name} was not ready within {self._timeout_s:g} s"
            if why is None:
                raise RuntimeFailure(FailureReason.TIMEOUT, head) from None
            raise RuntimeFailure(why.reason, f"{head}: {why.message}") from None

    async def _find(self, service_id: str) -> _Found | None:
        found = await self._client.list("StatefulSet", labels=f"{LABEL_SERVICE}={service_id}")
        if not found:
            return None
        meta = found[0]["metadata"]
        env = found[0]["spec"]["template"]["spec"]["containers"][0].get("env") or []
        user = next((e["value"] for e in env if e["name"] == "POSTGRES_USER"), "app")
        return _Found(meta["namespace"], meta["name"], user)

    async def _require(self, service_id: str) -> _Found:
        found = await self._find(service_id)
        if found is None:
            raise _not_found(service_id)
        return found


def _stateful_set_ready(stateful_set: Manifest) -> bool:
    spec = stateful_set.get("spec") or {}
    status = stateful_set.get("status") or {}
    meta = stateful_set.get("metadata") or {}
    wanted = int(spec.get("replicas", 1))
    return (
        status.get("observedGeneration", 0) >= meta.get("generation", 0)
        and status.get("readyReplicas", 0) >= wanted
        and status.get("updatedReplicas", 0) >= wanted
        and status.get("currentRevision") == status.get("updateRevision")
    )


def _state(stateful_set: Manifest, pods: list[Manifest]) -> tuple[RunStatus, str | None]:
    spec = stateful_set.get("spec") or {}
    if int(spec.get("replicas", 1)) == 0:
        return RunStatus.STOPPED, "scaled to zero"
    if _stateful_set_ready(stateful_set):
        return RunStatus.RUNNING, None
    why = next((d for d in map(rollout.diagnose, pods) if d is not None), None)
    if why is None:
        return RunStatus.STARTING, None
    return (RunStatus.ERROR if why.final else RunStatus.STARTING), why.message


def _not_found(service_id: str) -> RuntimeFailure:
    return RuntimeFailure(FailureReason.NOT_FOUND, f"no database {service_id!r} in this cluster")
