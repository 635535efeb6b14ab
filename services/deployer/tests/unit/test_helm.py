"""How the kubernetes runtime drives the helm CLI, without a cluster: the private files it writes
(kubeconfig, registry config, values), the chart arguments by source, and what a runtime without
charts answers for a Helm service. The real installs are in
integration/test_kubernetes_runtime.py (marked kubernetes)."""

from __future__ import annotations

import base64
import json
import stat
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from services.deployer.tests.unit.fakes import FakeRuntime, NoDatabases
from slipway_deployer.adapters.runtime import ChartRelease, FailureReason, RuntimeFailure
from slipway_deployer.adapters.runtime.kubernetes import helm
from slipway_deployer.adapters.runtime.kubernetes.client import KubeClient
from slipway_deployer.adapters.runtime.kubernetes.render import RegistryAuth
from slipway_deployer.adapters.runtime.registry import Placement
from slipway_deployer.usecases import steps
from slipway_libs.egress import EgressPolicy

TOKEN = "cluster-token-never-on-a-command-line"
PASSWORD = "registry-password-of-the-platform"
REGISTRY = RegistryAuth("127.0.0.1:15000", "deployer", PASSWORD)


Make = Callable[..., helm.Helm]


@pytest.fixture
async def make() -> AsyncIterator[Make]:
    """Helm adapters of a cluster that is never asked anything here."""
    clients: list[KubeClient] = []

    def made(**options: Any) -> helm.Helm:
        access = helm.KubeAccess("https://127.0.0.1:16443", TOKEN, "-----BEGIN CERTIFICATE-----")
        clients.append(KubeClient.connect(api_url=access.api_url, token=None, ca_cert=None))
        return helm.Helm(access, clients[-1], helm.HelmOptions(registry=REGISTRY, **options))

    yield made
    for client in clients:
        await client.close()


def _release(chart: dict[str, Any], **fields: Any) -> ChartRelease:
    return ChartRelease(
        service_id=str(uuid.uuid4()),
        environment_id=str(uuid.uuid4()),
        release_name="web",
        chart=chart,
        **fields,
    )


OCI = {"source": "repository", "repository_url": "oci://127.0.0.1:15000/charts", "name": "web"}


async def test_credentials_go_to_private_files_only(make: Make) -> None:
    found = make()
    async with found._workdir() as work:
        assert stat.S_IMODE(work.stat().st_mode) == 0o700
        for name in ("kubeconfig", "registry.json", "repositories.yaml"):
            assert stat.S_IMODE((work / name).stat().st_mode) == 0o600
        config = json.loads((work / "kubeconfig").read_text())
        assert config["users"][0]["user"] == {"token": TOKEN}
        ca = config["clusters"][0]["cluster"]["certificate-authority-data"]
        assert base64.b64decode(ca).decode() == "-----BEGIN CERTIFICATE-----"
        auths = json.loads((work / "registry.json").read_text())["auths"]
        assert base64.b64decode(auths["127.0.0.1:15000"]["auth"]).decode() == f"deployer:{PASSWORD}"
        env = helm._helm_env(work)
        assert env["KUBECONFIG"] == str(work / "kubeconfig")
        assert not any(TOKEN in v or PASSWORD in v for v in env.values())
    assert not work.exists()  # removed afterwards


def test_variables_arrive_under_slipway_env_after_the_specs_values(tmp_path: Path) -> None:
    release = _release(OCI, values_yaml="greeting: hello\n", env={"API_KEY": "s3cr3t"})
    files = helm._write_values(tmp_path, release)
    assert [f.name for f in files] == ["values.yaml", "slipway-values.json"]  # later wins
    assert json.loads(files[1].read_text()) == {"slipway": {"env": {"API_KEY": "s3cr3t"}}}
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    assert "slipway" in helm.ENV_KEY


def test_set_values_are_sorted_flag_pairs() -> None:
    assert helm._set_args("--set", {"b": "2", "a.c[0]": "1"}) == [
        "--set",
        "a.c[0]=1",
        "--set",
        "b=2",
    ]


async def test_the_platform_registrys_charts_are_pulled_over_its_plain_http(make: Make) -> None:
    chart = {**OCI, "version": "0.1.0"}
    args = await make()._chart_args(_release(chart), Path("/nonexistent"))
    assert args == ["oci://127.0.0.1:15000/charts/web", "--version", "0.1.0", "--plain-http"]
    tls = await make(registry_plain_http=False)._chart_args(_release(chart), Path("/x"))
    assert "--plain-http" not in tls


async def test_a_repository_chart_is_named_with_its_repo_and_exact_version(make: Make) -> None:
    chart = {
        "source": "repository",
        "repository_url": "https://93.184.215.14/charts",
        "name": "nginx",
        "version": "1.2.3",
    }
    args = await make()._chart_args(_release(chart), Path("/x"))
    assert args == ["nginx", "--repo", "https://93.184.215.14/charts", "--version", "1.2.3"]


async def test_a_chart_on_a_private_address_is_refused_unless_allow_listed(make: Make) -> None:
    chart = {
        "source": "repository",
        "repository_url": "https://127.0.0.1:8443/charts",
        "name": "web",
        "version": "1.0.0",
    }
    with pytest.raises(RuntimeFailure) as refused:
        await make()._chart_args(_release(chart), Path("/x"))
    assert refused.value.reason is FailureReason.TARGET_NOT_ALLOWED
    allowed = EgressPolicy.from_setting("127.0.0.1:8443")
    assert (await make(egress=allowed)._chart_args(_release(chart), Path("/x")))[0] == "web"


async def test_a_chart_of_an_unknown_source_is_refused_with_a_stable_reason(make: Make) -> None:
    chart = {"source": "s3", "url": "s3://bucket/chart.tgz"}
    with pytest.raises(RuntimeFailure) as refused:
        await make()._chart_args(_release(chart), Path("/x"))
    assert refused.value.reason is FailureReason.CHART_SOURCE_NOT_SUPPORTED


async def test_helms_reason_never_echoes_a_secret(make: Make) -> None:
    said = f"Error: failed to authorize: {PASSWORD} and Bearer {TOKEN}"
    said += " at <.Values.slipway.env.API_KEY>: s3cr3t-v4lue"
    scrubbed = make()._scrub(said, ["s3cr3t-v4lue", "x"])
    assert PASSWORD not in scrubbed and TOKEN not in scrubbed and "s3cr3t-v4lue" not in scrubbed
    assert scrubbed.startswith("Error: failed to authorize")


def test_a_release_reads_its_revision_from_helm_list() -> None:
    listed = {
        "name": "web",
        "namespace": "slipway-env",
        "revision": "3",
        "status": "deployed",
        "chart": "web-0.1.0",
        "app_version": "1.0",
    }
    state = helm._release_state(listed, "slipway-env")
    assert (state.revision, state.status, state.chart) == (3, "deployed", "web-0.1.0")


def test_a_runtime_without_charts_refuses_helm_services() -> None:
    where = Placement(uuid.uuid4(), "local", "local", FakeRuntime(), NoDatabases())
    with pytest.raises(steps.StepFailed) as refused:
        steps.charts(where)
    assert refused.value.reason == "KIND_NOT_SUPPORTED"
    assert "use a Kubernetes cluster" in refused.value.message


async def test_a_missing_helm_cli_is_runtime_not_available(make: Make, tmp_path: Path) -> None:
    with pytest.raises(RuntimeFailure) as failed:
        await make(binary=str(tmp_path / "no-helm"))._run(tmp_path, ["version"], timeout_s=5)
    assert failed.value.reason is FailureReason.RUNTIME_NOT_AVAILABLE
    assert "no-helm" in failed.value.message


async def test_a_git_chart_leaving_its_repository_is_refused_before_anything_runs(
    make: Make,
) -> None:
    chart = {"source": "git", "url": "https://git.example.com/o/r.git", "path": "/a/../../etc"}
    with pytest.raises(RuntimeFailure) as refused:  # checked before the cluster is asked
        await make().install(_release(chart))
    assert refused.value.reason is FailureReason.CHART_PATH_INVALID
