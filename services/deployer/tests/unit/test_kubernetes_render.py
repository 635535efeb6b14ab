"""Rendering workloads into Kubernetes manifests (pure), checked against the schemas of the
devstack's Kubernetes version offline, and reading rollouts from the objects a watch delivers."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from slipway_deployer.adapters.runtime.base import (
    CronSpec,
    FailureReason,
    HealthSpec,
    PortSpec,
    RunStatus,
    RuntimeFailure,
    Workload,
)
from slipway_deployer.adapters.runtime.kubernetes import (
    KubernetesOpener,
    KubernetesSettings,
    names,
    render,
    render_database,
    rollout,
)
from slipway_deployer.adapters.runtime.kubernetes.render import RegistryAuth, RenderOptions
from slipway_deployer.adapters.runtime.kubernetes.render_database import (
    DatabaseOptions,
    DatabaseSpec,
)
from slipway_deployer.adapters.runtime.kubernetes.validate import validate_all

ENV_ID = "0b7c1d2e-3f40-4a5b-8c6d-7e8f90a1b2c3"
SERVICE_ID = "5d1c2b3a-4e5f-4a6b-9c7d-8e9f0a1b2c3d"
SECRET = "hunter2-but-longer"
OPTIONS = RenderOptions(
    ingress_class="nginx",
    ingress_domain="apps.example.com",
    registry=RegistryAuth("registry.example.com", "pull", "registry-password"),
    cpu_millicores=2000,
    memory_mib=1024,
)


def _workload(**overrides: Any) -> Workload:
    fields: dict[str, Any] = {
        "service_id": SERVICE_ID,
        "environment_id": ENV_ID,
        "name": "Api_Server",
        "image": "registry.example.com/slipway/org/api:1",
        "command": ["/app"],
        "env": {"TOKEN": SECRET, "LEVEL": "debug"},
        "files": {"/etc/b.pem": "b", "/etc/a.pem": SECRET},
        "ports": [PortSpec(8080, public=True), PortSpec(9000, public=True, default=True)],
        "health": HealthSpec(type="tcp", initial_delay_s=2.5, period_s=0.5, timeout_s=1.2),
        "organization_id": "org-1",
    }
    return Workload(**{**fields, **overrides})


def _by_kind(manifests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f"{m['kind']}/{m['metadata']['name']}": m for m in manifests}


def test_an_application_is_a_namespace_secrets_a_deployment_a_service_and_an_ingress() -> None:
    found = _by_kind(render.application(_workload(), OPTIONS))
    assert list(found) == [
        f"Namespace/slipway-{ENV_ID}",
        "Secret/api-server-env",
        "Secret/api-server-files",
        "Secret/slipway-registry",
        "Deployment/api-server",
        "Service/api-server",
        "Ingress/api-server",
    ]
    namespaces = {m["metadata"].get("namespace") for m in found.values()}
    assert namespaces == {None, f"slipway-{ENV_ID}"}
    labels = found["Deployment/api-server"]["metadata"]["labels"]
    assert labels["slipway.dev/service"] == SERVICE_ID
    assert labels["slipway.dev/environment"] == ENV_ID
    assert labels["slipway.dev/organization"] == "org-1"
    assert labels["app.kubernetes.io/managed-by"] == "slipway"


def test_the_deployment_takes_variables_from_the_secret_and_sizes_probes_from_the_workload() -> (
    None
):
    deployment = _by_kind(render.application(_workload(), OPTIONS))["Deployment/api-server"]
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"] == ["/app"]
    assert "args" not in container  # the image's cmd stays
    assert container["envFrom"] == [{"secretRef": {"name": "api-server-env"}}]
    assert container["env"][0] == {"name": "PORT", "value": "9000"}
    assert container["resources"] == {
        "requests": {"cpu": "2", "memory": "1Gi"},  # canonical: what the server stores
        "limits": {"memory": "1Gi"},
    }
    assert container["readinessProbe"] == {
        "tcpSocket": {"port": 9000},
        "initialDelaySeconds": 3,
        "periodSeconds": 1,
        "timeoutSeconds": 2,
        "failureThreshold": 3,
    }
    assert [m["mountPath"] for m in container["volumeMounts"]] == ["/etc/a.pem", "/etc/b.pem"]
    assert pod["imagePullSecrets"] == [{"name": "slipway-registry"}]
    assert pod["automountServiceAccountToken"] is False
    assert deployment["spec"]["selector"] == {"matchLabels": {"slipway.dev/service": SERVICE_ID}}


def test_secret_values_are_only_in_secrets() -> None:
    manifests = render.application(_workload(), OPTIONS)
    encoded = base64.b64encode(SECRET.encode()).decode()
    for manifest in manifests:
        text = json.dumps(manifest)
        assert SECRET not in text
        assert "registry-password" not in text
        if manifest["kind"] != "Secret":
            assert encoded not in text, manifest["metadata"]["name"]
    files = _by_kind(manifests)["Secret/api-server-files"]["data"]
    assert base64.b64decode(files["file-0"]).decode() == SECRET  # /etc/a.pem, sorted first


def test_rendering_is_deterministic_and_a_changed_value_rolls_the_pods() -> None:
    first = render.application(_workload(), OPTIONS)
    assert render.application(_workload(), OPTIONS) == first
    changed = render.application(_workload(env={"TOKEN": "other", "LEVEL": "debug"}), OPTIONS)
    template = _by_kind(first)["Deployment/api-server"]["spec"]["template"]["metadata"]
    changed_template = _by_kind(changed)["Deployment/api-server"]["spec"]["template"]["metadata"]
    digest = names.ANNOTATION_DIGEST
    assert template["annotations"][digest] != changed_template["annotations"][digest]
    assert (
        template["labels"][names.LABEL_TEMPLATE] != changed_template["labels"][names.LABEL_TEMPLATE]
    )


def test_public_ports_get_hosts_under_the_ingress_domain_and_urls() -> None:
    workload = _workload()
    assert render.public_hosts(workload, OPTIONS) == {
        9000: "api-server-0b7c1d2e.apps.example.com",
        8080: "api-server-0b7c1d2e-8080.apps.example.com",
    }
    ingress = _by_kind(render.application(workload, OPTIONS))["Ingress/api-server"]
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert "tls" not in ingress["spec"]
    assert render.urls(workload, OPTIONS)[9000] == "http://api-server-0b7c1d2e.apps.example.com"
    tls = RenderOptions(ingress_domain="apps.example.com", ingress_tls=True, tls_issuer="le")
    secure = _by_kind(render.application(workload, tls))["Ingress/api-server"]
    assert secure["spec"]["tls"] == [
        {
            "hosts": sorted(render.public_hosts(workload, tls).values()),
            "secretName": "api-server-tls",
        }
    ]
    assert secure["metadata"]["annotations"] == {"cert-manager.io/cluster-issuer": "le"}
    assert render.urls(workload, tls)[9000] == "https://api-server-0b7c1d2e.apps.example.com"
    assert render.urls(workload, RenderOptions()) == {
        8080: f"http://api-server.slipway-{ENV_ID}.svc:8080",
        9000: f"http://api-server.slipway-{ENV_ID}.svc:9000",
    }


def test_without_ports_files_registry_or_domain_only_what_is_needed() -> None:
    workload = _workload(ports=[], files={}, health=None)
    kinds = [m["kind"] for m in render.application(workload, RenderOptions())]
    assert kinds == ["Namespace", "Secret", "Deployment"]


def test_a_job_never_retries_stops_at_its_timeout_and_reports_through_its_termination_message() -> (
    None
):
    job_workload = _workload(kind="job", ports=[], health=None)
    manifests = render.job_objects(job_workload, OPTIONS, run_id="AbC123", timeout_s=90.5)
    job = manifests[-1]
    assert job["metadata"]["name"] == "api-server-run-abc123"
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["activeDeadlineSeconds"] == 91
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["containers"][0]["terminationMessagePath"] == names.OUTPUT_PATH


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"kind": "job"}, "not run as a service"),
        ({"ports": [PortSpec(80), PortSpec(80)]}, "ports must be unique"),
        ({"health": HealthSpec(port=81)}, "health port is not declared"),
        ({"env": {"BAD KEY": "x", "OK": "y"}}, "BAD KEY"),
        ({"files": {"relative/path": "x"}}, "absolute"),
    ],
)
def test_an_invalid_workload_is_refused_with_its_problem(
    overrides: dict[str, Any], needle: str
) -> None:
    with pytest.raises(RuntimeFailure) as refused:
        render.application(_workload(**overrides), OPTIONS)
    assert refused.value.reason is FailureReason.INVALID_WORKLOAD
    assert needle in refused.value.message


def test_names_are_dns_labels() -> None:
    assert names.dns_label("9lives_Service") == "s-9lives-service"
    assert names.object_name(_workload(name="x" * 80)) == "x" * 50
    assert names.namespace_name(ENV_ID) == f"slipway-{ENV_ID}"


def test_every_rendered_manifest_passes_the_schemas_of_the_cluster_version() -> None:
    job_workload = _workload(kind="job", ports=[], health=None)
    manifests = [
        *render.application(_workload(), OPTIONS),
        *render.job_objects(job_workload, OPTIONS, run_id="r1", timeout_s=30),
    ]
    validate_all(manifests, "1.35")


def test_a_manifest_the_schemas_refuse_is_named_without_quoting_a_secret() -> None:
    manifests = render.application(_workload(), OPTIONS)
    deployment = next(m for m in manifests if m["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["bogus"] = 1
    secret = next(m for m in manifests if m["kind"] == "Secret")
    secret["data"]["TOKEN"] = 12345  # not a string: the schema's message would quote it
    with pytest.raises(RuntimeFailure) as refused:
        validate_all([deployment], "1.35")
    assert refused.value.reason is FailureReason.INVALID_WORKLOAD
    assert "Deployment api-server" in refused.value.message
    assert "bogus" in refused.value.message
    with pytest.raises(RuntimeFailure) as secret_refused:
        validate_all([secret], "1.35")
    assert "12345" not in secret_refused.value.message
    assert "data.TOKEN" in secret_refused.value.message


# -- reading rollouts ------------------------------------------------------------------------


def _deployment(**status: Any) -> dict[str, Any]:
    return {"metadata": {"generation": 2}, "spec": {"replicas": 2}, "status": status}


def test_a_deployment_is_rolled_out_when_every_new_replica_is_available_and_no_old_one_left() -> (
    None
):
    done = {"observedGeneration": 2, "updatedReplicas": 2, "replicas": 2, "availableReplicas": 2}
    assert rollout.deployment_ready(_deployment(**done))
    assert not rollout.deployment_ready(_deployment(**{**done, "observedGeneration": 1}))
    assert not rollout.deployment_ready(_deployment(**{**done, "replicas": 3}))  # an old one
    assert not rollout.deployment_ready(_deployment(**{**done, "availableReplicas": 1}))


def _pod(*, waiting: str | None = None, scheduled: str | None = None, ready: bool = True) -> Any:
    status: dict[str, Any] = {"conditions": []}
    if scheduled is not None:
        condition = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}
        status["conditions"].append({**condition, "message": scheduled})
    state = {"waiting": {"reason": waiting}} if waiting else {"running": {}}
    container = {"image": "img", "state": state, "ready": ready, "restartCount": 4}
    status["containerStatuses"] = [] if scheduled else [container]
    return {"metadata": {"name": "p"}, "status": status}


@pytest.mark.parametrize(
    ("pod", "reason", "final"),
    [
        (_pod(waiting="ImagePullBackOff"), FailureReason.PULL_FAILED, True),
        (_pod(waiting="ErrImagePull"), FailureReason.PULL_FAILED, True),
        (_pod(waiting="CrashLoopBackOff"), FailureReason.CRASHED, True),
        (_pod(waiting="CreateContainerConfigError"), FailureReason.START_FAILED, True),
        (_pod(scheduled="0/1 nodes: Insufficient cpu"), FailureReason.START_FAILED, False),
        (_pod(ready=False), FailureReason.HEALTHCHECK_FAILED, False),
    ],
)
def test_a_pod_says_why_it_is_not_ready(pod: Any, reason: FailureReason, final: bool) -> None:
    diagnosis = rollout.diagnose(pod)
    assert diagnosis is not None
    assert (diagnosis.reason, diagnosis.final) == (reason, final)


def test_a_ready_pod_has_nothing_to_say_and_the_status_follows_the_deployment() -> None:
    assert rollout.diagnose(_pod()) is None
    ready = {"observedGeneration": 2, "updatedReplicas": 2, "replicas": 2, "availableReplicas": 2}
    assert rollout.run_status(_deployment(**ready), [_pod()])[0] is RunStatus.RUNNING
    crashing = rollout.run_status(_deployment(), [_pod(waiting="CrashLoopBackOff")])
    assert crashing[0] is RunStatus.WARNING
    stopped = {"metadata": {}, "spec": {"replicas": 0}, "status": {}}
    assert rollout.run_status(stopped, [])[0] is RunStatus.STOPPED
    assert rollout.restarts([_pod(), _pod()]) == 8


# -- databases and the opener ----------------------------------------------------------------


def test_a_database_keeps_its_password_in_its_secret_and_its_data_in_a_claim() -> None:
    spec = DatabaseSpec(SERVICE_ID, "shop", "16", ENV_ID)
    manifests = render_database.database(spec, DatabaseOptions(storage="5Gi"), password=SECRET)
    found = _by_kind(manifests)
    name = spec.object_name
    assert list(found) == [
        f"Namespace/slipway-{ENV_ID}",
        f"Secret/{name}-db",
        f"Service/{name}",
        f"StatefulSet/{name}",
    ]
    stateful_set = found[f"StatefulSet/{name}"]
    assert SECRET not in json.dumps(stateful_set)
    claim = stateful_set["spec"]["volumeClaimTemplates"][0]["spec"]
    assert claim["resources"] == {"requests": {"storage": "5Gi"}}
    container = stateful_set["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "postgres:16"
    validate_all(manifests, "1.35")
    with pytest.raises(RuntimeFailure):
        render_database.check("mysql", "shop")


def test_the_cluster_settings_win_over_the_deployer_defaults() -> None:
    opener = KubernetesOpener(KubernetesSettings(render=RenderOptions(ingress_class="nginx")))
    settings, databases = opener.for_cluster({"ingress_domain": "apps.c", "storage_class": "ssd"})
    assert settings.render.ingress_class == "nginx"
    assert settings.render.ingress_domain == "apps.c"
    assert databases.storage_class == "ssd"


def test_the_workload_sizes_its_pods_and_names_its_project() -> None:
    workload = _workload(cpu_millicores=250, memory_mib=3072, instances=3, project_id="p-1")
    deployment = _by_kind(render.application(workload, OPTIONS))["Deployment/api-server"]
    assert deployment["spec"]["replicas"] == 3
    assert deployment["metadata"]["annotations"][names.ANNOTATION_REPLICAS] == "3"
    assert deployment["metadata"]["labels"][names.LABEL_PROJECT] == "p-1"
    resources = deployment["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources == {"requests": {"cpu": "250m", "memory": "3Gi"}, "limits": {"memory": "3Gi"}}


def test_a_cron_job_is_scheduled_natively_and_validates() -> None:
    cron = CronSpec("*/5 * * * *", timezone="Europe/Paris", concurrency_policy="replace")
    workload = _workload(kind="job", ports=[], health=None, cron=cron)
    manifests = render.cron_job_objects(workload, OPTIONS)
    cron_job = manifests[-1]
    assert cron_job["kind"] == "CronJob"
    assert cron_job["metadata"]["namespace"] == f"slipway-{ENV_ID}"
    spec = cron_job["spec"]
    assert (spec["schedule"], spec["timeZone"]) == ("*/5 * * * *", "Europe/Paris")
    assert (spec["concurrencyPolicy"], spec["suspend"]) == ("Replace", False)
    assert spec["jobTemplate"]["spec"]["backoffLimit"] == 0
    assert SECRET not in json.dumps(cron_job)
    validate_all(manifests, "1.35")
    with pytest.raises(RuntimeFailure):
        render.cron_job_objects(_workload(cron=cron), OPTIONS)  # a service is no cron job
    assert rollout.cron_status(cron_job)[0] is RunStatus.RUNNING
    assert rollout.cron_status({"spec": {"suspend": True}})[0] is RunStatus.STOPPED
