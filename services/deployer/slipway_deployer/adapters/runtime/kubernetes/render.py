"""Workload → Kubernetes manifests: pure functions, no I/O (unit-tested; the runtime applies them).

Invariants:
- Everything of an environment lives in one namespace, ``slipway-<environment id>``; every object
  carries labels naming the organization, environment and service (``LABEL_*``), so the runtime
  finds a service's objects by label, never by remembering names.
- A secret value is only ever in a ``Secret`` (the service's variables and files); the Deployment
  and the Job reference it (``envFrom``, a secret volume). The pod template carries a keyed digest
  of the values so a changed value rolls the pods, and an unchanged one changes nothing.
- Rendering is deterministic: the same workload and options give byte-identical manifests, so a
  server-side re-apply of an unchanged workload changes no object (resourceVersions kept).
- Quantities are written in the API server's canonical form (``1`` not ``1000m``), for the same
  reason.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from slipway_deployer.adapters.runtime.base import (
    FailureReason,
    HealthSpec,
    PortSpec,
    RuntimeFailure,
    Workload,
)
from slipway_deployer.adapters.runtime.kubernetes.names import (
    ANNOTATION_DIGEST,
    ANNOTATION_REPLICAS,
    ANNOTATION_URLS,
    CONTAINER,
    LABEL_NAME,
    LABEL_SERVICE,
    LABEL_TEMPLATE,
    OUTPUT_PATH,
    REGISTRY_SECRET,
    Manifest,
    b64,
    cpu_quantity,
    env_secret_name,
    files_secret_name,
    job_name,
    labels,
    memory_quantity,
    namespace_name,
    object_name,
    slug,
)

_SECRET_KEY = re.compile(r"[-._a-zA-Z0-9]+")


@dataclass(frozen=True)
class RegistryAuth:
    """The platform registry's pull credentials (a secret: never logged)."""

    server: str
    username: str
    password: str


@dataclass(frozen=True)
class RenderOptions:
    """Cluster-wide choices (from the cluster's settings)."""

    ingress_class: str | None = None
    ingress_domain: str | None = None  # public ports get <name>-<env>.<domain>; None: no Ingress
    # TLS at the ingress: a certificate per Ingress in ``<name>-tls``, issued by cert-manager's
    # ``tls_issuer`` (a ClusterIssuer) when given; URLs are https only then
    ingress_tls: bool = False
    tls_issuer: str | None = None
    registry: RegistryAuth | None = None
    # when the workload does not say
    cpu_millicores: int = 500
    memory_mib: int = 512


# -- checks --------------------------------------------------------------------------------------


def check(workload: Workload, *, kind: str) -> None:
    """What the API server would refuse, said in the workload's terms (INVALID_WORKLOAD)."""
    declared = [p.port for p in workload.ports]
    health_port = workload.health.port if workload.health else None
    bad_keys = sorted(k for k in workload.env if not _SECRET_KEY.fullmatch(k))
    paths = list(workload.files)
    problems = [
        f"a {workload.kind} is not run as a {kind}" if workload.kind != kind else "",
        "ports must be unique" if len(set(declared)) != len(declared) else "",
        "the health port is not declared" if health_port not in (None, *declared) else "",
        f"variable names Kubernetes cannot hold: {', '.join(bad_keys)}" if bad_keys else "",
        "file paths must be absolute" if any(not p.startswith("/") for p in paths) else "",
    ]
    if message := "; ".join(p for p in problems if p):
        raise RuntimeFailure(FailureReason.INVALID_WORKLOAD, message)


# -- manifests -----------------------------------------------------------------------------------


def application(workload: Workload, options: RenderOptions) -> list[Manifest]:
    """Every object of a long-running service, in the order they are applied."""
    check(workload, kind="service")
    namespaced = [deployment(workload, options)]
    if workload.ports:
        namespaced.append(service(workload))
    if (ingress := ingress_manifest(workload, options)) is not None:
        namespaced.append(ingress)
    namespace = namespace_name(workload.environment_id)
    for manifest in namespaced:
        manifest["metadata"]["namespace"] = namespace
    return [namespace_manifest(workload), *secrets(workload, options), *namespaced]


def job_objects(
    workload: Workload, options: RenderOptions, *, run_id: str, timeout_s: float
) -> list[Manifest]:
    """What one run of a job needs: the namespace, its secrets and the Job itself."""
    check(workload, kind="job")
    run = job(workload, options, run_id=run_id, timeout_s=timeout_s)
    run["metadata"]["namespace"] = namespace_name(workload.environment_id)
    return [namespace_manifest(workload), *secrets(workload, options), run]


def cron_job_objects(workload: Workload, options: RenderOptions) -> list[Manifest]:
    """A cron job run natively by the cluster: the namespace, its secrets and the CronJob."""
    check(workload, kind="job")
    cron = cron_job(workload, options)
    cron["metadata"]["namespace"] = namespace_name(workload.environment_id)
    return [namespace_manifest(workload), *secrets(workload, options), cron]


def namespace_manifest(workload: Workload) -> Manifest:
    env_labels = {k: v for k, v in labels(workload).items() if k not in (LABEL_NAME, LABEL_SERVICE)}
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": namespace_name(workload.environment_id), "labels": env_labels},
    }


def secrets(workload: Workload, options: RenderOptions) -> list[Manifest]:
    """The variables' Secret (always, so ``envFrom`` never points at nothing), the files' Secret
    when there are files, the registry's pull secret when the platform has one."""
    name, namespace = object_name(workload), namespace_name(workload.environment_id)
    found = [_secret(workload, env_secret_name(name), dict(workload.env))]
    if workload.files:
        found.append(_secret(workload, files_secret_name(name), _file_keys(workload.files)))
    if options.registry is not None:
        found.append(registry_secret(workload, options.registry))
    for manifest in found:
        manifest["metadata"]["namespace"] = namespace
    return found


def registry_secret(workload: Workload, registry: RegistryAuth) -> Manifest:
    login = f"{registry.username}:{registry.password}"
    config = {
        "auths": {
            registry.server: {
                "username": registry.username,
                "password": registry.password,
                "auth": b64(login),
            }
        }
    }
    env_labels = namespace_manifest(workload)["metadata"]["labels"]
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/dockerconfigjson",
        "metadata": {"name": REGISTRY_SECRET, "labels": env_labels},
        "data": {".dockerconfigjson": b64(json.dumps(config, sort_keys=True))},
    }


def deployment(workload: Workload, options: RenderOptions) -> Manifest:
    name, meta = object_name(workload), labels(workload)
    template = pod_template(workload, options, restart_policy="Always")
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "labels": meta,
            "annotations": {
                ANNOTATION_REPLICAS: str(workload.instances),
                ANNOTATION_URLS: json.dumps(urls(workload, options), sort_keys=True),
            },
        },
        "spec": {
            "replicas": workload.instances,
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": {LABEL_SERVICE: workload.service_id}},
            "template": template,
        },
    }


def service(workload: Workload) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": object_name(workload), "labels": labels(workload)},
        "spec": {
            "type": "ClusterIP",
            "selector": {LABEL_SERVICE: workload.service_id},
            "ports": [
                {"name": f"p{p.port}", "port": p.port, "targetPort": p.port, "protocol": "TCP"}
                for p in workload.ports
            ],
        },
    }


def ingress_manifest(workload: Workload, options: RenderOptions) -> Manifest | None:
    """Public http/grpc ports through one Ingress, a host each (public tcp ports would need a
    load balancer: not rendered)."""
    hosts = public_hosts(workload, options)
    if not hosts:
        return None
    name = object_name(workload)
    rules = [
        {
            "host": host,
            "http": {
                "paths": [
                    {
                        "path": "/",
                        "pathType": "Prefix",
                        "backend": {"service": {"name": name, "port": {"number": port}}},
                    }
                ]
            },
        }
        for port, host in sorted(hosts.items())
    ]
    spec: dict[str, Any] = {"rules": rules}
    metadata: Manifest = {"name": name, "labels": labels(workload)}
    if options.ingress_class:
        spec["ingressClassName"] = options.ingress_class
    if options.ingress_tls:
        spec["tls"] = [{"hosts": sorted(hosts.values()), "secretName": f"{name}-tls"}]
        if options.tls_issuer:
            metadata["annotations"] = {"cert-manager.io/cluster-issuer": options.tls_issuer}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": metadata,
        "spec": spec,
    }


def public_hosts(workload: Workload, options: RenderOptions) -> dict[int, str]:
    """Declared public port → its host name under the ingress domain."""
    if not options.ingress_domain:
        return {}
    base = f"{object_name(workload)}-{slug(workload.environment_id)[:8].rstrip('-')}"
    default = workload.default_port
    return {
        p.port: f"{base}.{options.ingress_domain}"
        if p == default
        else f"{base}-{p.port}.{options.ingress_domain}"
        for p in workload.ports
        if p.public and p.protocol in ("http", "grpc")
    }


def urls(workload: Workload, options: RenderOptions) -> dict[int, str]:
    """Every declared port's URL: the public host when it has one, else the in-cluster name."""
    namespace, name = namespace_name(workload.environment_id), object_name(workload)
    scheme = "https" if options.ingress_tls else "http"
    public = public_hosts(workload, options)
    return {
        p.port: f"{scheme}://{public[p.port]}"
        if p.port in public
        else f"http://{name}.{namespace}.svc:{p.port}"
        for p in workload.ports
    }


def job(workload: Workload, options: RenderOptions, *, run_id: str, timeout_s: float) -> Manifest:
    """One run: never retried (``backoffLimit: 0``), killed at the timeout by the cluster too;
    the job's outputs are its termination message (``OUTPUT_PATH``, read back from the pod)."""
    meta = labels(workload)
    template = pod_template(workload, options, restart_policy="Never")
    container = template["spec"]["containers"][0]
    container["terminationMessagePath"] = OUTPUT_PATH
    container["terminationMessagePolicy"] = "File"
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": job_name(workload, run_id), "labels": meta},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": max(1, math.ceil(timeout_s)),
            "template": template,
        },
    }


def cron_job(workload: Workload, options: RenderOptions) -> Manifest:
    """Each run a Job like ``run_job``'s (never retried); ``suspend`` is false as applied (a
    deploy runs it), stop suspends it."""
    if workload.cron is None:
        raise RuntimeFailure(FailureReason.INVALID_WORKLOAD, "a cron job needs a schedule")
    template = pod_template(workload, options, restart_policy="Never")
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": object_name(workload), "labels": labels(workload)},
        "spec": {
            "schedule": workload.cron.schedule,
            "timeZone": workload.cron.timezone,
            "concurrencyPolicy": workload.cron.concurrency_policy.capitalize(),
            "suspend": False,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "metadata": {"labels": labels(workload)},
                "spec": {"backoffLimit": 0, "template": template},
            },
        },
    }


def pod_template(workload: Workload, options: RenderOptions, *, restart_policy: str) -> Manifest:
    name = object_name(workload)
    container: Manifest = {
        "name": CONTAINER,
        "image": workload.image,
        "envFrom": [{"secretRef": {"name": env_secret_name(name)}}],
        "env": _port_env(workload),
        "resources": _resources(workload, options),
    }
    if workload.command is not None:
        container["command"] = list(workload.command)
    if workload.args is not None:
        container["args"] = list(workload.args)
    if workload.ports:
        container["ports"] = [
            {"name": f"p{p.port}", "containerPort": p.port, "protocol": "TCP"}
            for p in workload.ports
        ]
    if workload.health is not None:
        container["readinessProbe"] = probe(workload.health, workload.default_port)
    spec: Manifest = {
        "restartPolicy": restart_policy,
        "enableServiceLinks": False,  # no other service's address in the environment
        "automountServiceAccountToken": False,  # the app has no business with the API server
        "containers": [container],
    }
    if options.registry is not None:
        spec["imagePullSecrets"] = [{"name": REGISTRY_SECRET}]
    if workload.files:
        _mount_files(workload, spec, container)
    template: Manifest = {
        "metadata": {
            "labels": labels(workload),
            "annotations": {ANNOTATION_DIGEST: config_digest(workload)},
        },
        "spec": spec,
    }
    template["metadata"]["labels"][LABEL_TEMPLATE] = _digest(json.dumps(template, sort_keys=True))
    return template


def probe(health: HealthSpec, default: PortSpec | None) -> Manifest:
    port = health.port if health.port is not None else (default.port if default else None)
    if port is None:
        raise RuntimeFailure(FailureReason.INVALID_WORKLOAD, "a health check needs a port")
    action: Manifest = (
        {"httpGet": {"path": health.path, "port": port, "scheme": "HTTP"}}
        if health.type == "http"
        else {"tcpSocket": {"port": port}}
    )
    return {
        **action,
        "initialDelaySeconds": math.ceil(health.initial_delay_s),
        "periodSeconds": max(1, math.ceil(health.period_s)),
        "timeoutSeconds": max(1, math.ceil(health.timeout_s)),
        "failureThreshold": max(1, health.failure_threshold),
    }


def config_digest(workload: Workload) -> str:
    """A digest of the variables and files, keyed with the service id: pods roll when a value
    changes, and the annotation is no plain hash of a (possibly short) secret."""
    material = json.dumps([workload.env, workload.files], sort_keys=True).encode()
    return hmac.new(workload.service_id.encode(), material, hashlib.sha256).hexdigest()[:16]


# -- helpers -------------------------------------------------------------------------------------


def _secret(workload: Workload, name: str, values: Mapping[str, str]) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": name, "labels": labels(workload)},
        "data": {key: b64(value) for key, value in sorted(values.items())},
    }


def _file_keys(files: Mapping[str, str]) -> dict[str, str]:
    """Secret keys cannot hold paths: file ``i`` of the sorted paths is key ``file-i``."""
    return {f"file-{i}": files[path] for i, path in enumerate(sorted(files))}


def _mount_files(workload: Workload, spec: Manifest, container: Manifest) -> None:
    name = object_name(workload)
    spec["volumes"] = [
        {"name": "files", "secret": {"secretName": files_secret_name(name), "defaultMode": 0o400}}
    ]
    container["volumeMounts"] = [
        {"name": "files", "mountPath": path, "subPath": f"file-{i}", "readOnly": True}
        for i, path in enumerate(sorted(workload.files))
    ]


def _port_env(workload: Workload) -> list[Manifest]:
    env = [{"name": f"PORT_{p.port}", "value": str(p.port)} for p in workload.ports]
    if (default := workload.default_port) is not None:
        env.insert(0, {"name": "PORT", "value": str(default.port)})
    return env


def _resources(workload: Workload, options: RenderOptions) -> Manifest:
    memory = memory_quantity(workload.memory_mib or options.memory_mib)
    cpu = cpu_quantity(workload.cpu_millicores or options.cpu_millicores)
    return {
        "requests": {"cpu": cpu, "memory": memory},
        "limits": {"memory": memory},
    }


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]
