"""Helm services on the ``kubernetes`` runtime: a tiny chart made here, packaged and pushed to the
devstack's registry (oci://, plain http, the admin's credentials), then installed, upgraded,
rolled back, stopped, restarted and uninstalled by the real helm CLI against the devstack's real
kube-apiserver, as Slipway's deployer account pulling with the deployer's registry user. Charts
from git: the same chart committed to a real local repository (under the runtime's local roots)
and fetched by real git at the branch's head or a recorded commit. Objects are read back with
the admin's kubeconfig."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from services.deployer.tests.integration.test_kubernetes_runtime import _access, _settings
from slipway_deployer.adapters.runtime import ChartRelease, FailureReason, RunStatus
from slipway_deployer.adapters.runtime.base import RuntimeFailure
from slipway_deployer.adapters.runtime.kubernetes import HelmOptions, KubernetesRuntime
from slipway_deployer.adapters.runtime.kubernetes.client import KubeClient, KubeError
from slipway_deployer.adapters.runtime.kubernetes.git_chart import GitChartOptions
from slipway_deployer.adapters.runtime.kubernetes.names import namespace_name
from slipway_deployer.adapters.runtime.kubernetes.render import RegistryAuth
from slipway_libs.testing.plugin import KUBERNETES_SWITCH

pytestmark = [pytest.mark.integration, pytest.mark.kubernetes]  # skipped without the switch

SECRET = "helm-secret-variable-value"
CONFIGMAPS = "/api/v1/namespaces/{ns}/configmaps"  # not a kind the runtime's client knows
CHART_YAML = "apiVersion: v2\nname: {name}\nversion: {version}\nappVersion: '1.0'\n"
VALUES_YAML = "greeting: hello\nreplicas: 1\nnodeSelector: {}\n"
NOWHERE = {"nodeSelector.slipway-test/nowhere": "true"}  # no node: its pod is never scheduled
CONFIGMAP = """apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-settings
data:
  greeting: {{ .Values.greeting | quote }}
  mode: {{ .Values.slipway.env.MODE | default "" | quote }}
"""
DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels: {app: {{ .Release.Name }}}
  template:
    metadata:
      labels: {app: %(template_app)s}
    spec:
      {{- with .Values.nodeSelector }}
      nodeSelector: {{ toJson . }}
      {{- end }}
      containers:
        - name: app
          image: 127.0.0.1:15000/slipway/busybox:latest
          env:
            - {name: GREETING, value: {{ .Values.greeting | quote }}}
"""


def _env(devstack: Any, key: str) -> str:
    value = devstack.env.get(key)
    if not value:
        pytest.fail(f"{key} is not in .devstack/env: run `{KUBERNETES_SWITCH}=1 make infra-up`")
    return str(value)


async def _helm(devstack: Any, work: Path, *args: str) -> str:
    """The test's own helm calls (package, push), as the registry's admin."""
    process = await asyncio.create_subprocess_exec(
        _env(devstack, "SLIPWAY_HELM"),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "HELM_CONFIG_HOME": str(work / "config"), "HOME": str(work)},
    )
    out, err = await process.communicate()
    assert process.returncode == 0, f"helm {args[0]} failed: {err.decode()}"
    return out.decode()


async def push_chart(devstack: Any, work: Path, *, name: str, broken: bool = False) -> str:
    """A chart (Chart.yaml, a ConfigMap and a Deployment using values) pushed to the devstack's
    registry under oci://<registry>/charts; ``broken``: its Deployment's selector does not match
    its pods, which the API server refuses."""
    chart = work / name
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(CHART_YAML.format(name=name, version="0.1.0"))
    (chart / "values.yaml").write_text(VALUES_YAML)
    (chart / "templates" / "configmap.yaml").write_text(CONFIGMAP)
    template_app = "someone-else" if broken else "{{ .Release.Name }}"
    (chart / "templates" / "deployment.yaml").write_text(
        DEPLOYMENT % {"template_app": template_app}
    )
    await _helm(devstack, work, "package", str(chart), "--destination", str(work))
    registry = _env(devstack, "SLIPWAY_REGISTRY")
    auth = f"{_env(devstack, 'SLIPWAY_REGISTRY_USERNAME')}:"
    auth += _env(devstack, "SLIPWAY_REGISTRY_PASSWORD")
    config = work / "registry.json"
    config.write_text(
        json.dumps({"auths": {registry: {"auth": base64.b64encode(auth.encode()).decode()}}})
    )
    config.chmod(0o600)
    await _helm(
        devstack,
        work,
        "push",
        str(work / f"{name}-0.1.0.tgz"),
        f"oci://{registry}/charts",
        "--plain-http",
        "--registry-config",
        str(config),
    )
    return f"oci://{registry}/charts"


@pytest.fixture
def environment_id() -> str:
    return str(uuid.uuid4())


@pytest.fixture
async def admin(devstack: Any) -> AsyncIterator[KubeClient]:
    client = KubeClient.connect(**_access(devstack, "SLIPWAY_KUBERNETES_ADMIN_KUBECONFIG"))
    yield client
    await client.close()


@pytest.fixture
async def runtime(devstack: Any, environment_id: str) -> AsyncIterator[KubernetesRuntime]:
    """As the deployer's account, pulling charts with the deployer's registry user."""
    registry = RegistryAuth(
        _env(devstack, "SLIPWAY_REGISTRY"),
        _env(devstack, "SLIPWAY_DEPLOYER_REGISTRY_USERNAME"),
        _env(devstack, "SLIPWAY_DEPLOYER_REGISTRY_PASSWORD"),
    )
    helm = HelmOptions(binary=_env(devstack, "SLIPWAY_HELM"), registry=registry)
    settings = replace(_settings(), helm=helm)
    access = _access(devstack, "SLIPWAY_KUBERNETES_KUBECONFIG")
    found = KubernetesRuntime.from_access(**access, settings=settings)
    yield found
    await found.delete_environment(environment_id)
    await found.close()


class ChartRepo:
    """A real git repository holding the test's chart (``main``), committed to as the test goes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True)
        self._git("init", "--quiet", "--initial-branch=main")

    def commit_chart(self, where: str, *, greeting: str) -> str:
        chart = self.path / where
        (chart / "templates").mkdir(parents=True, exist_ok=True)
        (chart / "Chart.yaml").write_text(CHART_YAML.format(name="web", version="0.1.0"))
        (chart / "values.yaml").write_text(VALUES_YAML.replace("hello", greeting))
        (chart / "templates" / "configmap.yaml").write_text(CONFIGMAP)
        deployment = DEPLOYMENT % {"template_app": "{{ .Release.Name }}"}
        (chart / "templates" / "deployment.yaml").write_text(deployment)
        return self.commit(f"the chart says {greeting}")

    def commit(self, message: str) -> str:
        self._git("add", "--all")
        self._git("commit", "--quiet", "--message", message)
        return self._git("rev-parse", "HEAD").strip()

    def _git(self, *args: str) -> str:
        identity = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com"}
        identity |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
        done = subprocess.run(
            ["git", "-C", str(self.path), *args],
            env={"PATH": os.environ["PATH"], "HOME": str(self.path), **identity},
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, f"git {args[0]}: {done.stderr}"
        return done.stdout


@pytest.fixture
async def git_runtime(
    devstack: Any, environment_id: str, tmp_path: Path
) -> AsyncIterator[KubernetesRuntime]:
    """As ``runtime``, fetching git charts from local repositories under ``tmp_path/repos``."""
    git = GitChartOptions(local_roots=(tmp_path / "repos",))
    helm = HelmOptions(binary=_env(devstack, "SLIPWAY_HELM"), git=git)
    settings = replace(_settings(), helm=helm)
    access = _access(devstack, "SLIPWAY_KUBERNETES_KUBECONFIG")
    found = KubernetesRuntime.from_access(**access, settings=settings)
    yield found
    await found.delete_environment(environment_id)
    await found.close()


def _release(environment_id: str, url: str, name: str, **fields: Any) -> ChartRelease:
    chart = {"source": "repository", "repository_url": url, "name": name, "version": "0.1.0"}
    values = {
        "service_id": str(uuid.uuid4()),
        "environment_id": environment_id,
        "release_name": "web",
        "chart": chart,
        "env": {"MODE": "production", "API_KEY": SECRET},
        "timeout_s": 45.0,
        **fields,
    }
    return ChartRelease(**values)


async def _settings_map(admin: KubeClient, namespace: str) -> dict[str, str] | None:
    try:
        found = await admin.request("GET", f"{CONFIGMAPS.format(ns=namespace)}/web-settings")
    except KubeError as error:
        if error.status == 404:
            return None
        raise
    return dict(found["data"])


async def test_a_chart_from_the_registry_installs_upgrades_rolls_back_and_uninstalls(
    devstack: Any,
    runtime: KubernetesRuntime,
    admin: KubeClient,
    environment_id: str,
    tmp_path: Path,
) -> None:
    name = f"web-{uuid.uuid4().hex[:8]}"
    url = await push_chart(devstack, tmp_path, name=name)
    namespace = namespace_name(environment_id)
    first = _release(environment_id, url, name)

    installed = await runtime.install_chart(first)

    assert (installed.revision, installed.status) == (1, "deployed")
    assert installed.chart == f"{name}-0.1.0"
    assert await _settings_map(admin, namespace) == {"greeting": "hello", "mode": "production"}
    deployment = await admin.get("Deployment", namespace, "web")
    assert deployment is not None
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "GREETING", "value": "hello"} in container["env"]
    assert deployment["status"]["readyReplicas"] == 1  # kwok made the pod Ready; --wait saw it
    maps = await admin.request("GET", CONFIGMAPS.format(ns=namespace))
    for item in [*maps["items"], deployment]:  # variables reach the chart in a file only
        assert SECRET not in json.dumps(item), f"{item['metadata']['name']} holds a variable"
    state = await runtime.status(first.service_id)
    assert state.status is RunStatus.RUNNING
    assert state.message == "release web revision 1 (deployed)"

    upgraded = await runtime.install_chart(
        _release(
            environment_id, url, name, service_id=first.service_id, set={"greeting": "bonjour"}
        )
    )

    assert upgraded.revision == 2
    assert (await _settings_map(admin, namespace) or {})["greeting"] == "bonjour"

    # the deployment's rollback deploys the older snapshot: the same chart version and values
    rolled_back = await runtime.install_chart(first)

    assert rolled_back.revision == 3
    assert (await _settings_map(admin, namespace) or {})["greeting"] == "hello"
    status = await runtime.chart_status(environment_id, "web")
    assert status is not None and status.revision == 3

    await runtime.stop_chart(environment_id, "web")
    deployment = await admin.get("Deployment", namespace, "web")
    assert deployment is not None and deployment["spec"]["replicas"] == 0
    assert (await runtime.status(first.service_id)).status is RunStatus.STOPPED
    await runtime.restart_chart(environment_id, "web")
    deployment = await admin.get("Deployment", namespace, "web")
    assert deployment is not None and deployment["spec"]["replicas"] == 1

    await runtime.uninstall_chart(environment_id, "web")

    assert await _settings_map(admin, namespace) is None
    assert await admin.get("Deployment", namespace, "web") is None
    assert await runtime.chart_status(environment_id, "web") is None
    await runtime.uninstall_chart(environment_id, "web")  # idempotent
    with pytest.raises(RuntimeFailure) as gone:
        await runtime.status(first.service_id)
    assert gone.value.reason is FailureReason.NOT_FOUND


async def test_a_chart_that_does_not_install_fails_with_helms_reason_and_leaves_nothing(
    devstack: Any,
    runtime: KubernetesRuntime,
    admin: KubeClient,
    environment_id: str,
    tmp_path: Path,
) -> None:
    name = f"broken-{uuid.uuid4().hex[:8]}"
    url = await push_chart(devstack, tmp_path, name=name, broken=True)

    with pytest.raises(RuntimeFailure) as failed:
        await runtime.install_chart(_release(environment_id, url, name))

    assert failed.value.reason is FailureReason.HELM_FAILED
    assert "selector" in failed.value.message, failed.value.message
    assert await runtime.chart_status(environment_id, "web") is None  # --atomic took it back
    assert await _settings_map(admin, namespace_name(environment_id)) is None

    with pytest.raises(RuntimeFailure) as missing:
        await runtime.install_chart(_release(environment_id, url, f"{name}-absent"))
    assert missing.value.reason is FailureReason.HELM_FAILED
    assert "not found" in missing.value.message, missing.value.message


async def test_a_release_that_never_gets_ready_fails_within_its_timeout(
    devstack: Any, runtime: KubernetesRuntime, environment_id: str, tmp_path: Path
) -> None:
    name = f"web-{uuid.uuid4().hex[:8]}"
    url = await push_chart(devstack, tmp_path, name=name)
    loop = asyncio.get_running_loop()
    started = loop.time()

    with pytest.raises(RuntimeFailure) as failed:
        await runtime.install_chart(
            _release(environment_id, url, name, set_string=NOWHERE, timeout_s=5)
        )

    assert failed.value.reason is FailureReason.HELM_FAILED
    assert "context deadline exceeded" in failed.value.message, failed.value.message
    # helm's --timeout, its atomic clean-up and the status: not the kill margin
    assert loop.time() - started < 5 + 20
    assert await runtime.chart_status(environment_id, "web") is None


async def test_an_install_cancelled_midway_is_taken_back_by_the_next_one(
    devstack: Any,
    runtime: KubernetesRuntime,
    admin: KubeClient,
    environment_id: str,
    tmp_path: Path,
) -> None:
    name = f"web-{uuid.uuid4().hex[:8]}"
    url = await push_chart(devstack, tmp_path, name=name)
    namespace = namespace_name(environment_id)
    stuck = _release(environment_id, url, name, set_string=NOWHERE, timeout_s=50)
    installing = asyncio.create_task(runtime.install_chart(stuck))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while await admin.get("Deployment", namespace, "web") is None:  # helm is waiting now
        assert not installing.done(), installing
        if loop.time() > deadline:
            pytest.fail("helm did not create the Deployment within 30 s")
        await asyncio.sleep(0.2)

    installing.cancel()  # a cancelled deployment: helm is killed, its release left pending
    with pytest.raises(asyncio.CancelledError):
        await installing
    pending = await runtime.chart_status(environment_id, "web")
    assert pending is not None and pending.status == "pending-install"

    installed = await runtime.install_chart(_release(environment_id, url, name))

    assert (installed.status, installed.revision) == ("deployed", 1)
    deployment = await admin.get("Deployment", namespace, "web")
    assert deployment is not None and deployment["status"].get("readyReplicas") == 1


def _git_release(environment_id: str, service_id: str, **chart: Any) -> ChartRelease:
    return ChartRelease(
        service_id=service_id,
        environment_id=environment_id,
        release_name="web",
        chart={"source": "git", "branch": "main", **chart},
        env={"MODE": "production", "API_KEY": SECRET},
        timeout_s=45.0,
    )


async def test_a_chart_from_git_installs_the_branch_head_and_rolls_back_to_the_recorded_commit(
    git_runtime: KubernetesRuntime, admin: KubeClient, environment_id: str, tmp_path: Path
) -> None:
    repo = ChartRepo(tmp_path / "repos" / "charts")
    first = repo.commit_chart("charts/web", greeting="hello")
    namespace, service_id = namespace_name(environment_id), str(uuid.uuid4())
    chart = {"url": str(repo.path), "path": "/charts/web"}

    installed = await git_runtime.install_chart(_git_release(environment_id, service_id, **chart))

    assert (installed.revision, installed.status, installed.commit) == (1, "deployed", first)
    assert await _settings_map(admin, namespace) == {"greeting": "hello", "mode": "production"}

    second = repo.commit_chart("charts/web", greeting="bonjour")
    upgraded = await git_runtime.install_chart(_git_release(environment_id, service_id, **chart))

    assert (upgraded.revision, upgraded.commit) == (2, second)
    assert (await _settings_map(admin, namespace) or {})["greeting"] == "bonjour"

    # the rollback deploys the older snapshot, which recorded the first commit
    rolled_back = await git_runtime.install_chart(
        _git_release(environment_id, service_id, **chart, commit=first)
    )

    assert (rolled_back.revision, rolled_back.commit) == (3, first)
    assert (await _settings_map(admin, namespace) or {})["greeting"] == "hello"
    state = await git_runtime.status(service_id)
    assert state.message == "release web revision 3 (deployed)"


async def test_a_git_chart_outside_its_repository_or_missing_is_refused_with_a_clear_reason(
    git_runtime: KubernetesRuntime, environment_id: str, tmp_path: Path
) -> None:
    repo = ChartRepo(tmp_path / "repos" / "charts")
    repo.commit_chart("charts/web", greeting="hello")
    (repo.path / "charts" / "web" / "templates" / "leak.yaml").symlink_to("/etc/hostname")
    repo.commit("a template that is the deployer's file")
    elsewhere = ChartRepo(tmp_path / "elsewhere")
    elsewhere.commit_chart("charts/web", greeting="hello")
    url, outside = str(repo.path), str(elsewhere.path)
    refused = [  # (chart, reason, what the message names)
        ({"url": url, "path": "/charts/../../x"}, FailureReason.CHART_PATH_INVALID, "'..'"),
        ({"url": url, "path": "/charts/absent"}, FailureReason.CHART_NOT_FOUND, "/charts/absent"),
        ({"url": url, "path": "/charts/web"}, FailureReason.CHART_PATH_INVALID, "leak.yaml"),
        ({"url": url, "branch": "absent"}, FailureReason.GIT_FETCH_FAILED, "refs/heads/absent"),
        ({"url": outside, "path": "/charts/web"}, FailureReason.TARGET_NOT_ALLOWED, outside),
    ]
    for chart, reason, named in refused:
        with pytest.raises(RuntimeFailure) as failed:
            await git_runtime.install_chart(
                _git_release(environment_id, str(uuid.uuid4()), **chart)
            )
        assert failed.value.reason is reason, (chart, failed.value)
        assert named in failed.value.message, (chart, failed.value.message)
    assert await git_runtime.chart_status(environment_id, "web") is None  # nothing installed
