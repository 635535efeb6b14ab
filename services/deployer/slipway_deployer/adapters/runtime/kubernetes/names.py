"""What Slipway calls things on a cluster: namespaces, object names, labels and annotations (the
runtime finds a service's objects by these labels), and the canonical forms of quantities."""

from __future__ import annotations

import base64
import re
from typing import Any

from slipway_deployer.adapters.runtime.base import Workload

Manifest = dict[str, Any]

FIELD_MANAGER = "slipway"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_NAME = "app.kubernetes.io/name"
LABEL_ORGANIZATION = "slipway.dev/organization"
LABEL_PROJECT = "slipway.dev/project"
LABEL_ENVIRONMENT = "slipway.dev/environment"
LABEL_SERVICE = "slipway.dev/service"
LABEL_TEMPLATE = "slipway.dev/template"  # a digest of the pod template: this rollout's pods
ANNOTATION_REPLICAS = "slipway.dev/replicas"  # what restart brings a stopped service back to
ANNOTATION_DIGEST = "slipway.dev/config-digest"
ANNOTATION_URLS = "slipway.dev/urls"  # declared port -> URL (JSON): status after adopt
REGISTRY_SECRET = "slipway-registry"  # noqa: S105 (a Secret object's name)
CONTAINER = "app"
OUTPUT_PATH = "/slipway/output.json"  # a job's outputs: its termination message

_NOT_DNS = re.compile(r"[^a-z0-9-]+")


def namespace_name(environment_id: str) -> str:
    return f"slipway-{slug(environment_id)}"[:63].rstrip("-")


def slug(value: str) -> str:
    """Lowercase letters, digits and '-' (a DNS-1123 label's alphabet)."""
    return _NOT_DNS.sub("-", value.lower()).strip("-")


def dns_label(value: str, *, limit: int = 63) -> str:
    """A DNS-1035 label (a Service's name): lowercase letters, digits, '-', a letter first."""
    label = slug(value)
    if not label or not label[0].isalpha():
        label = f"s-{label}"
    return label[:limit].rstrip("-")


def object_name(workload: Workload) -> str:
    return dns_label(workload.name, limit=50)


def env_secret_name(name: str) -> str:
    return f"{name}-env"


def files_secret_name(name: str) -> str:
    return f"{name}-files"


def job_name(workload: Workload, run_id: str) -> str:
    return f"{object_name(workload)}-run-{slug(run_id)[:12]}"


def labels(workload: Workload) -> dict[str, str]:
    found = {
        LABEL_MANAGED_BY: FIELD_MANAGER,
        LABEL_NAME: object_name(workload),
        LABEL_ENVIRONMENT: workload.environment_id,
        LABEL_SERVICE: workload.service_id,
    }
    if workload.organization_id:
        found[LABEL_ORGANIZATION] = workload.organization_id
    if workload.project_id:
        found[LABEL_PROJECT] = workload.project_id
    return found


def cpu_quantity(millicores: int) -> str:
    return str(millicores // 1000) if millicores % 1000 == 0 else f"{millicores}m"


def memory_quantity(mib: int) -> str:
    return f"{mib // 1024}Gi" if mib % 1024 == 0 else f"{mib}Mi"


def b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()
