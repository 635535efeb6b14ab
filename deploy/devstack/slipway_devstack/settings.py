"""Settings of the devstack: versions, ports' defaults, paths under .devstack/, timeouts."""

from __future__ import annotations

from pathlib import Path

Ranges = dict[int, tuple[int, int]]  # ApiVersions: api key -> (min, max)
Secrets = dict[str, str]  # "admin" and each service -> password

SERVICES = ("identity", "catalog", "builder", "deployer", "scheduler", "logs")
# every service has a Kafka principal (SASL/SCRAM) and an internal HTTP token of its own; the
# gateway has no database, so it is not in SERVICES. `admin` is the devstack's, tests' and
# tools' principal (a Kafka super user); `controller` authenticates the broker to the KRaft
# controller (SASL/PLAIN: KRaft controllers cannot use SCRAM, its credentials live in metadata)
PRINCIPALS = (*SERVICES, "gateway")
KAFKA_ADMIN = "admin"
KAFKA_CONTROLLER = "controller"
SCRAM = "SCRAM-SHA-256"
KAFKA_VERSION = "4.1.1"
SCALA_VERSION = "2.13"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.6.1"
DEFAULT_LOG4J_VERSION = "2.24.3"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_ADMIN = "slipway_admin"
PG_SYSTEM_USER = "postgres"
PG_FALLBACK_ROOT = Path("/var/lib/slipway-devstack")
HOST = "127.0.0.1"
KAFKA_READY_TIMEOUT = 120.0
PG_READY_TIMEOUT = 60.0
KAFKA_STOP_TIMEOUT = 30.0
REGISTRY_READY_TIMEOUT = 30.0
REGISTRY_STOP_TIMEOUT = 10.0
APT_PACKAGES = {
    "java": "openjdk-17-jre-headless",
    "mvn": "maven",
    "postgres": "postgresql-15",
    "psql": "postgresql-client-15",
    "buildah": "buildah",
    "docker-registry": "docker-registry",
    "busybox": "busybox-static",
    "htpasswd": "apache2-utils",
}
BUSYBOX = Path("/bin/busybox")  # from busybox-static: must be a static executable
BASE_REPOSITORY = "slipway/busybox"
BASE_TAG = "latest"
MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json"
)

REPO = Path(__file__).resolve().parents[3]
STATE = REPO / ".devstack"
RUN = STATE / "run"
LOGS = STATE / "logs"
KAFKA_DIR = STATE / "kafka"
PG_LINK = STATE / "pg"
ENV_FILE = STATE / "env"
SECRETS_FILE = STATE / "secrets.json"
KAFKA_PID = RUN / "kafka.pid"
KAFKA_USERS = KAFKA_DIR / "scram-users"  # digest of the SCRAM users the storage was formatted with
KAFKA_LOG = LOGS / "kafka.log"
KAFKA_OUT = LOGS / "kafka.out"
REGISTRY_DIR = STATE / "registry"
REGISTRY_CONFIG = REGISTRY_DIR / "config.yml"
REGISTRY_HTPASSWD = REGISTRY_DIR / "htpasswd"
REGISTRY_PID = RUN / "registry.pid"
# the registry's users: the admin (devstack, tests, tools), and the two services that reach it
REGISTRY_ADMIN = "admin"
REGISTRY_SERVICES = ("builder", "deployer")
REGISTRY_LOG = LOGS / "registry.log"
MAIL_CATCHER = Path(__file__).resolve().parents[1] / "mailcatcher.py"
MAIL_DIR = STATE / "mail"
MAIL_PID = RUN / "mailcatcher.pid"
MAIL_LOG = LOGS / "mailcatcher.log"
MAIL_READY_TIMEOUT = 10.0

# Kubernetes (behind SLIPWAY_DEVSTACK_KUBERNETES=1): a control plane built from the Go module
# proxy once per machine (versions checked together, see ../shared/INFRA.md), kwok's fake nodes
KUBERNETES_SWITCH = "SLIPWAY_DEVSTACK_KUBERNETES"
KUBERNETES_VERSION = "1.35.4"  # k8s.io/kubernetes; its staging modules are v0.35.4
ETCD_VERSION = "3.6.16"  # go.etcd.io/etcd/server/v3
KWOK_VERSION = "0.7.0"  # sigs.k8s.io/kwok (0.8 drops the built-in stages)
HELM_VERSION = "3.21.4"  # helm.sh/helm/v3
KUBE_DIR = STATE / "kubernetes"
KUBE_ADMIN_CONFIG = KUBE_DIR / "admin.kubeconfig"
KUBE_SLIPWAY_CONFIG = KUBE_DIR / "slipway.kubeconfig"
KUBE_NODE = "kwok-node-0"
KUBE_SLIPWAY_NAMESPACE = "slipway-system"
KUBE_SLIPWAY_ACCOUNT = "slipway-deployer"
KUBE_SERVICE_RANGE = "10.96.0.0/16"
KUBE_POD_RANGE = "10.244.0.1/16"
# component -> (variable overriding the port, default); everything listens on HOST only
KUBE_PORTS = {
    "etcd": ("SLIPWAY_ETCD_PORT", 12379),
    "etcd-peer": ("SLIPWAY_ETCD_PEER_PORT", 12380),
    "kube-apiserver": ("SLIPWAY_KUBE_API_PORT", 16443),
    "kube-controller-manager": ("SLIPWAY_KUBE_CONTROLLER_MANAGER_PORT", 10257),
    "kube-scheduler": ("SLIPWAY_KUBE_SCHEDULER_PORT", 10259),
}
KUBE_READY_TIMEOUT = 90.0
KUBE_STOP_TIMEOUT = 15.0


class DevstackError(Exception):
    """A failure to report to the user without a traceback."""
