"""Helm services on a Kubernetes cluster: the helm CLI (``helm upgrade --install --atomic``,
``list``, ``uninstall``) run as a subprocess against the cluster, one release per service in
its environment's namespace.

Invariants:
- Credentials never reach a command line, an environment variable's value or a log: each call
  writes the cluster's kubeconfig and the platform registry's credentials (``--registry-config``,
  docker's format) into a private temp directory (0700, files 0600) removed afterwards. Helm's
  own homes (config, cache, data, repositories) live there too: nothing is shared between
  tenants' calls.
- Values reach the chart as files, in this order (later wins): the spec's ``values_yaml``, then
  ``slipway.env`` = the environment's variables (secrets included: a file, never ``--set``), then
  the spec's ``set`` and ``set_string`` (plain, non-secret values of the spec).
- Chart sources: an ``oci://`` registry (the platform's registry with its credentials, plain http
  when the platform's registry is), an ``https://`` repository (``--repo`` with the exact
  ``--version``); the chart's host is checked against the egress policy first (the platform's
  registry always allowed); a ``git`` chart: its repository fetched at one commit into the
  private directory and installed from its ``path`` (``git_chart``: the shared git rules, the
  organization's credential), the commit returned in the release's state so the deployment
  records it and a rollback installs the same chart.
- Every install is ``--atomic`` with a timeout: a chart that does not install is rolled back by
  helm and raises ``RuntimeFailure(HELM_FAILED)`` with helm's reason; helm killed past its
  timeout (plus a margin) is ``TIMEOUT``. Cancelling the caller kills helm; the release it left
  pending is taken back (uninstalled or rolled back) by the next install.
- Stop scales the release's Deployments and StatefulSets to zero (remembering their replicas in
  an annotation); restart scales them back and restarts their pods; the release stays installed.
  Delete is ``helm uninstall``, idempotent.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import structlog

from slipway_deployer.adapters.runtime.base import (
    ChartRelease,
    FailureReason,
    ReleaseState,
    RunningState,
    RunStatus,
    RuntimeFailure,
)
from slipway_deployer.adapters.runtime.kubernetes import git_chart
from slipway_deployer.adapters.runtime.kubernetes.client import KubeClient
from slipway_deployer.adapters.runtime.kubernetes.names import (
    ANNOTATION_REPLICAS,
    FIELD_MANAGER,
    LABEL_ENVIRONMENT,
    LABEL_MANAGED_BY,
    LABEL_ORGANIZATION,
    LABEL_PROJECT,
    LABEL_SERVICE,
    namespace_name,
)
from slipway_deployer.adapters.runtime.kubernetes.render import RegistryAuth
from slipway_libs.egress import EgressError, EgressPolicy, checked_addresses

log = structlog.get_logger(__name__)

ENV_KEY = "slipway.env"  # the values key the environment's variables arrive under
_RELEASE_ANNOTATION = "meta.helm.sh/release-name"
_STOP_MANAGER = "slipway-stop"
_RESTART_MANAGER = "slipway-restart"
_RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
_SCALED = ("Deployment", "StatefulSet")
_KILL_MARGIN_S = 30.0  # helm's own --timeout comes first; this only ends a hung helm
_REASON_CHARS = 1500


@dataclass(frozen=True)
class HelmOptions:
    binary: str = "helm"
    registry: RegistryAuth | None = None  # the platform's registry (its charts under oci://)
    registry_plain_http: bool = True  # the platform's registry without TLS (its registry_tls)
    egress: EgressPolicy = field(default_factory=EgressPolicy)
    git: git_chart.GitChartOptions = field(default_factory=git_chart.GitChartOptions)


@dataclass(frozen=True)
class KubeAccess:
    """What a kubeconfig for helm is written from (``token`` is a secret)."""

    api_url: str
    token: str | None = field(default=None, repr=False)
    ca_cert: str | None = None
    insecure: bool = False


class Helm:
    """One cluster's Helm releases (``KubernetesRuntime`` delegates its chart calls here)."""

    def __init__(self, access: KubeAccess, client: KubeClient, options: HelmOptions) -> None:
        self._access = access
        self._client = client
        self._options = options

    async def install(self, release: ChartRelease) -> ReleaseState:
        """``helm upgrade --install --atomic``: the release at a new revision, deployed."""
        namespace = namespace_name(release.environment_id)
        source = None
        if release.chart.get("source") == "git":  # checked before anything runs
            source = git_chart.checked(dict(release.chart), self._options.git)
        await self._client.apply_all([_namespace(release)])
        commit = None
        async with self._workdir() as work:
            if source is not None:
                commit, directory = await git_chart.fetch(
                    source, release.git, work / "repository", self._options.git
                )
                chart_args = [str(directory)]
            else:
                chart_args = await self._chart_args(release, work)
            await self._unstick(work, namespace, release.release_name)
            values = _write_values(work, release)
            args = [
                "upgrade",
                "--install",
                release.release_name,
                *chart_args,
                "--namespace",
                namespace,
                "--atomic",
                "--wait",
                "--timeout",
                f"{max(1, int(release.timeout_s))}s",
                *[a for path in values for a in ("--values", str(path))],
                # on the release's own record (its Secret): status finds it by service
                "--labels",
                f"{LABEL_SERVICE}={release.service_id}",
                *_set_args("--set", release.set),
                *_set_args("--set-string", release.set_string),
            ]
            timeout_s = release.timeout_s + _KILL_MARGIN_S
            await self._run(work, args, timeout_s=timeout_s, secrets=release.env.values())
            state = await self._status(work, namespace, release.release_name)
        if state is None:
            raise RuntimeFailure(
                FailureReason.HELM_FAILED, f"release {release.release_name} is not there"
            )
        state = replace(state, commit=commit)
        log.info(
            "runtime.helm.installed",
            service_id=release.service_id,
            namespace=namespace,
            release=release.release_name,
            revision=state.revision,
            commit=commit,
        )
        return state

    async def status(self, environment_id: str, release_name: str) -> ReleaseState | None:
        async with self._workdir() as work:
            return await self._status(work, namespace_name(environment_id), release_name)

    async def service_status(self, service_id: str) -> RunningState | None:
        """The service's release as helm last recorded it (its storage Secrets' labels, read as
        metadata only), STOPPED when its workloads are scaled to zero; None: no release."""
        selector = f"owner=helm,{LABEL_SERVICE}={service_id}"
        records = await self._client.list("Secret", labels=selector, metadata_only=True)
        if not records:
            return None
        latest = max(records, key=lambda r: int(r["metadata"]["labels"].get("version", "0")))
        meta, labels = latest["metadata"], latest["metadata"]["labels"]
        name, revision, status = labels.get("name", ""), labels.get("version"), labels.get("status")
        message = f"release {name} revision {revision} ({status})"
        if status != "deployed":
            return RunningState(RunStatus.ERROR, 0, {}, message)
        found = await self._workloads(meta["namespace"], name)
        if found and all(int((i.get("spec") or {}).get("replicas", 1)) == 0 for _, i in found):
            return RunningState(RunStatus.STOPPED, 0, {}, message)
        return RunningState(RunStatus.RUNNING, 0, {}, message)

    async def uninstall(self, environment_id: str, release_name: str) -> bool:
        """``helm uninstall --wait``; False when there was no such release."""
        namespace = namespace_name(environment_id)
        async with self._workdir() as work:
            if await self._status(work, namespace, release_name) is None:
                return False
            args = ["uninstall", release_name, "--namespace", namespace, "--wait"]
            await self._run(work, args, timeout_s=300.0)
        log.info("runtime.helm.uninstalled", namespace=namespace, release=release_name)
        return True

    async def stop(self, environment_id: str, release_name: str) -> None:
        """The release's Deployments and StatefulSets scaled to zero (replicas remembered)."""
        namespace = namespace_name(environment_id)
        for kind, item in await self._workloads(namespace, release_name):
            replicas = int((item.get("spec") or {}).get("replicas", 1))
            annotations = item["metadata"].get("annotations") or {}
            remembered = annotations.get(ANNOTATION_REPLICAS) if replicas == 0 else str(replicas)
            body = {
                "metadata": {"annotations": {ANNOTATION_REPLICAS: remembered or "1"}},
                "spec": {"replicas": 0},
            }
            name = item["metadata"]["name"]
            await self._client.patch(kind, namespace, name, body, manager=_STOP_MANAGER)

    async def restart(self, environment_id: str, release_name: str) -> None:
        """Scaled back to the remembered replicas, pods restarted (a rollout restart)."""
        namespace = namespace_name(environment_id)
        found = await self._workloads(namespace, release_name)
        if not found and await self.status(environment_id, release_name) is None:
            raise RuntimeFailure(FailureReason.NOT_FOUND, f"no release {release_name!r}")
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        for kind, item in found:
            annotations = item["metadata"].get("annotations") or {}
            current = int((item.get("spec") or {}).get("replicas", 1))
            replicas = current or int(annotations.get(ANNOTATION_REPLICAS, "1"))
            body = {
                "spec": {
                    "replicas": replicas,
                    "template": {"metadata": {"annotations": {_RESTARTED_AT: now}}},
                }
            }
            name = item["metadata"]["name"]
            await self._client.patch(kind, namespace, name, body, manager=_RESTART_MANAGER)

    # -- helm ------------------------------------------------------------------------------------

    async def _status(self, work: Path, namespace: str, release_name: str) -> ReleaseState | None:
        """The release as ``helm list`` shows it (``helm status -o json`` omits the chart)."""
        pattern = f"^{re.escape(release_name)}$"
        args = ["list", "--namespace", namespace, "--filter", pattern, "--all", "--output", "json"]
        listed = json.loads(await self._run(work, args, timeout_s=60.0) or "[]")
        mine = [r for r in listed if r.get("name") == release_name]
        return _release_state(mine[0], namespace) if mine else None

    async def _unstick(self, work: Path, namespace: str, release_name: str) -> None:
        """A release left pending by a helm that was killed (a cancelled deployment, a deployer
        that died) refuses every later upgrade ("another operation is in progress"), and
        ``--atomic`` never ran its clean-up: a pending install is uninstalled, a pending upgrade
        or rollback rolled back to the revision before it."""
        current = await self._status(work, namespace, release_name)
        if current is None or not current.status.startswith("pending-"):
            return
        log.warning(
            "runtime.helm.unsticking", namespace=namespace, release=release_name, **_fields(current)
        )
        if current.status == "pending-install" or current.revision <= 1:
            args = ["uninstall", release_name, "--namespace", namespace, "--wait"]
        else:
            args = ["rollback", release_name, "--namespace", namespace, "--wait"]
        await self._run(work, args, timeout_s=300.0)

    async def _chart_args(self, release: ChartRelease, work: Path) -> list[str]:
        chart = release.chart
        if chart.get("source") != "repository":  # git charts are fetched by ``install``
            raise RuntimeFailure(
                FailureReason.CHART_SOURCE_NOT_SUPPORTED,
                f"charts from {chart.get('source')!r} sources are not installed: use an https://"
                " Helm repository, an oci:// registry or a git repository",
            )
        url, name, version = str(chart["repository_url"]), str(chart["name"]), str(chart["version"])
        await self._check_egress(url)
        if url.startswith("oci://"):
            args = [f"{url.rstrip('/')}/{name}", "--version", version]
            if self._platform(url) and self._options.registry_plain_http:
                args.append("--plain-http")
            return args
        return [name, "--repo", url, "--version", version]

    async def _check_egress(self, url: str) -> None:
        """The chart's host is a public one, or allow-listed, or the platform's registry."""
        if self._platform(url):
            return
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or 443
        try:
            await checked_addresses(host, port, policy=self._options.egress)
        except EgressError as error:
            raise RuntimeFailure(FailureReason.TARGET_NOT_ALLOWED, str(error)) from None

    def _platform(self, url: str) -> bool:
        registry = self._options.registry
        return registry is not None and urlsplit(url).netloc == registry.server

    async def _run(
        self, work: Path, args: list[str], *, timeout_s: float, secrets: Iterable[str] = ()
    ) -> str:
        """helm's stdout; its failure as ``HELM_FAILED`` with the reason it gives."""
        command = [
            self._options.binary,
            *args,
            "--kubeconfig",
            str(work / "kubeconfig"),
            "--registry-config",
            str(work / "registry.json"),
            "--repository-config",
            str(work / "repositories.yaml"),
            "--repository-cache",
            str(work / "cache" / "repository"),
        ]
        try:
            process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=_helm_env(work),
            )
        except OSError as error:  # not installed, not executable: this deployer's setup
            message = f"the helm CLI ({self._options.binary}) cannot run: {error.strerror}"
            raise RuntimeFailure(FailureReason.RUNTIME_NOT_AVAILABLE, message) from None
        try:
            async with asyncio.timeout(timeout_s):
                out, err = await process.communicate()
        except TimeoutError:
            raise RuntimeFailure(
                FailureReason.TIMEOUT, f"helm {args[0]} did not end within {timeout_s:g} s"
            ) from None
        finally:
            if process.returncode is None:  # timed out or cancelled: helm goes too
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        if process.returncode != 0:
            said = err.decode(errors="replace").strip()
            if "Error: " in said:  # what comes before is progress (Pulled:, Digest:)
                said = said[said.index("Error: ") :]
            reason = self._scrub(said or f"exit code {process.returncode}", secrets)
            raise RuntimeFailure(FailureReason.HELM_FAILED, f"helm {args[0]}: {reason}")
        return out.decode(errors="replace")

    def _scrub(self, text: str, secrets: Iterable[str] = ()) -> str:
        """helm's words, without a secret it might echo back (a template's error may quote a
        variable's value), kept short."""
        for secret in (self._access.token, self._registry_password(), *secrets):
            if secret and len(secret) >= 4:  # shorter ones would blank out ordinary words
                text = text.replace(secret, "***")
        return text[-_REASON_CHARS:]

    def _registry_password(self) -> str | None:
        registry = self._options.registry
        return registry.password if registry else None

    @contextlib.asynccontextmanager
    async def _workdir(self) -> AsyncIterator[Path]:
        work = Path(tempfile.mkdtemp(prefix="slipway-helm-"))  # 0700
        try:
            _write_private(work / "kubeconfig", json.dumps(_kubeconfig(self._access)))
            _write_private(work / "registry.json", json.dumps(_registry_config(self._options)))
            _write_private(work / "repositories.yaml", "apiVersion: v1\nrepositories: []\n")
            yield work
        finally:
            shutil.rmtree(work, ignore_errors=True)

    async def _workloads(self, namespace: str, release_name: str) -> list[tuple[str, Any]]:
        found = []
        for kind in _SCALED:
            for item in await self._client.list(kind, namespace):
                annotations = item["metadata"].get("annotations") or {}
                if annotations.get(_RELEASE_ANNOTATION) == release_name:
                    found.append((kind, item))
        return found


def _release_state(listed: Mapping[str, Any], namespace: str) -> ReleaseState:
    """One row of ``helm list -o json``."""
    return ReleaseState(
        name=str(listed.get("name", "")),
        namespace=namespace,
        revision=int(listed.get("revision", 0)),
        status=str(listed.get("status", "unknown")),
        chart=str(listed.get("chart", "")),
        app_version=listed.get("app_version") or None,
    )


def _fields(state: ReleaseState) -> dict[str, object]:
    return {"revision": state.revision, "status": state.status}


def _namespace(release: ChartRelease) -> dict[str, Any]:
    labels = {LABEL_MANAGED_BY: FIELD_MANAGER, LABEL_ENVIRONMENT: release.environment_id}
    if release.organization_id:
        labels[LABEL_ORGANIZATION] = release.organization_id
    if release.project_id:
        labels[LABEL_PROJECT] = release.project_id
    name = namespace_name(release.environment_id)
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def _write_values(work: Path, release: ChartRelease) -> list[Path]:
    """The values files, in helm's order (later wins): the spec's, then the variables."""
    files = []
    if release.values_yaml.strip():
        files.append(_write_private(work / "values.yaml", release.values_yaml))
    env = {"slipway": {"env": dict(release.env)}}
    files.append(_write_private(work / "slipway-values.json", json.dumps(env)))  # JSON is YAML
    return files


def _set_args(flag: str, values: Mapping[str, str]) -> list[str]:
    return [a for key, value in sorted(values.items()) for a in (flag, f"{key}={value}")]


def _kubeconfig(access: KubeAccess) -> dict[str, Any]:
    cluster: dict[str, Any] = {"server": access.api_url}
    if access.insecure:
        cluster["insecure-skip-tls-verify"] = True
    elif access.ca_cert:
        cluster["certificate-authority-data"] = base64.b64encode(access.ca_cert.encode()).decode()
    user = {"token": access.token} if access.token else {}
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "cluster", "cluster": cluster}],
        "users": [{"name": "slipway", "user": user}],
        "contexts": [{"name": "slipway", "context": {"cluster": "cluster", "user": "slipway"}}],
        "current-context": "slipway",
    }


def _registry_config(options: HelmOptions) -> dict[str, Any]:
    """What ``helm registry login`` would write (docker's config.json), without running it."""
    registry = options.registry
    if registry is None:
        return {"auths": {}}
    auth = base64.b64encode(f"{registry.username}:{registry.password}".encode()).decode()
    return {"auths": {registry.server: {"auth": auth}}}


def _helm_env(work: Path) -> dict[str, str]:
    """A clean environment: helm's homes in the private directory, nothing inherited that could
    point it at another cluster (KUBECONFIG) or registry config."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(work),
        "HELM_CONFIG_HOME": str(work / "config"),
        "HELM_CACHE_HOME": str(work / "cache"),
        "HELM_DATA_HOME": str(work / "data"),
        "KUBECONFIG": str(work / "kubeconfig"),
    }


def _write_private(path: Path, text: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(text)
    return path


__all__ = ["ENV_KEY", "Helm", "HelmOptions", "KubeAccess"]
