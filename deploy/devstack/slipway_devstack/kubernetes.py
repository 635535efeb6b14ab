"""A Kubernetes API server for tests: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and kwok (fake nodes: pods become Running and Ready without containers) on
loopback, behind SLIPWAY_DEVSTACK_KUBERNETES=1.

The binaries come from kubernetes_build (built once per machine). State lives in
.devstack/kubernetes/: etcd's data, the API server's certificates (its self-signed CA, valid for
127.0.0.1, not "localhost"), the static token file, the service-account signing key and two
kubeconfigs, both 0600 and self-contained (the CA embedded):
- admin.kubeconfig: a static token in system:masters (the devstack, tests, tools);
- slipway.kubeconfig: the token of the ServiceAccount slipway-system/slipway-deployer, bound to
  a ClusterRole with what a deployer needs and nothing cluster-wide beyond reading nodes — the
  credentials a user would register with Slipway for their cluster.
Authentication is by token only (anonymous requests reach just the public /version, /healthz and
/readyz), authorization is RBAC. The components run together or not at all: `up` with any of
them missing stops the others and starts the set again (etcd's data and the CA are kept).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import secrets
import shutil
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from slipway_devstack.kubernetes_build import KWOK_STAGES, ensure_kube_bins, kube_bin_dir
from slipway_devstack.kubernetes_rbac import (
    node_manifest,
    slipway_account_manifests,
    storage_class_manifest,
)
from slipway_devstack.proc import (
    env_port,
    log,
    pid_alive,
    port_free,
    proc_cmdline,
    run,
    spawn,
    tail,
    terminate,
    write_atomic,
)
from slipway_devstack.settings import (
    HOST,
    KUBE_ADMIN_CONFIG,
    KUBE_DIR,
    KUBE_NODE,
    KUBE_POD_RANGE,
    KUBE_PORTS,
    KUBE_READY_TIMEOUT,
    KUBE_SERVICE_RANGE,
    KUBE_SLIPWAY_ACCOUNT,
    KUBE_SLIPWAY_CONFIG,
    KUBE_SLIPWAY_NAMESPACE,
    KUBE_STOP_TIMEOUT,
    KUBERNETES_SWITCH,
    LOGS,
    RUN,
    DevstackError,
)

COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
CERTS = KUBE_DIR / "certs"
TOKENS = KUBE_DIR / "tokens.csv"
SA_KEY = KUBE_DIR / "sa.key"
SA_PUB = KUBE_DIR / "sa.pub"
KWOK_CONFIG = KUBE_DIR / "kwok.yaml"
SERVING_CERT = CERTS / "apiserver.crt"  # written by the API server: its cert + its own CA
AUDIT_POLICY = KUBE_DIR / "audit-policy.json"
# the requests of Slipway's account, one JSON line per stage (bench/kubernetes.py counts them)
AUDIT_LOG = LOGS / "kube-apiserver-audit.log"
AUDIT_LOG_MAX_MB = 100


def kube_enabled() -> bool:
    return os.environ.get(KUBERNETES_SWITCH, "").strip().lower() in ("1", "true", "yes", "on")


def kube_port(component: str) -> int:
    return env_port(*KUBE_PORTS[component])


def kube_api_url() -> str:
    return f"https://{HOST}:{kube_port('kube-apiserver')}"


def kube_log(component: str) -> Path:
    return LOGS / f"{component}.log"


def kube_pid(component: str) -> int | None:
    """Pid of our running component: its pid file names a live process of that binary whose
    arguments point into this checkout's state (a recycled pid does not)."""
    pid_file = RUN / f"{component}.pid"
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    argv = proc_cmdline(pid) if pid_alive(pid) else []
    if argv and Path(argv[0]).name == component and any(str(KUBE_DIR) in a for a in argv):
        return pid
    pid_file.unlink(missing_ok=True)
    return None


def kube_pids() -> dict[str, int | None]:
    return {c: kube_pid(c) for c in COMPONENTS}


def kube_running() -> bool:
    return all(kube_pids().values()) and KUBE_SLIPWAY_CONFIG.exists()


def stop_kubernetes() -> bool:
    """Stop every component that runs, the node agent first and etcd last."""
    stopped = False
    for component, pid in reversed(list(kube_pids().items())):
        if pid is not None:
            terminate(pid, component, KUBE_STOP_TIMEOUT)
            stopped = True
        (RUN / f"{component}.pid").unlink(missing_ok=True)
    return stopped


def ensure_kubernetes() -> bool:
    """Build (first time) and start the cluster unless it runs; True when it was started."""
    if kube_running():
        return False
    bin_dir = ensure_kube_bins()
    if any(kube_pids().values()):
        log("some Kubernetes components are not running: restarting them all")
        stop_kubernetes()
    check_kube_ports()
    start_kubernetes(bin_dir)
    return True


def check_kube_ports() -> None:
    for component, (var, _) in KUBE_PORTS.items():
        port = kube_port(component)
        if not port_free(port):
            raise DevstackError(
                f"port {HOST}:{port} ({component}) is already in use by a process that is not "
                f"this devstack's (see `ss -ltnp`); stop it or set {var}"
            )


def start_kubernetes(bin_dir: Path) -> None:
    started = time.monotonic()
    admin_token = prepare_state(bin_dir)
    start_etcd(bin_dir)
    start_apiserver(bin_dir)
    write_kubeconfig(KUBE_ADMIN_CONFIG, "admin", admin_token)
    start_controllers(bin_dir)
    kubectl(bin_dir, "apply", "-f", "-", stdin=json.dumps(node_manifest(KUBE_NODE)))
    kubectl(bin_dir, "apply", "-f", "-", stdin=json.dumps(storage_class_manifest()))
    timeout = f"--timeout={KUBE_READY_TIMEOUT:.0f}s"
    kubectl(bin_dir, "wait", "--for=condition=Ready", f"node/{KUBE_NODE}", timeout)
    create_slipway_account(bin_dir)
    log(f"Kubernetes API ready at {kube_api_url()} in {time.monotonic() - started:.1f}s")


def prepare_state(bin_dir: Path) -> str:
    """Directories, the static token file, the service-account signing key (kept across
    restarts: tokens already issued stay valid) and kwok's stages; returns the admin token."""
    for d in (KUBE_DIR, KUBE_DIR / "etcd", CERTS):
        d.mkdir(parents=True, exist_ok=True)
        os.chmod(d, 0o700)  # etcd warns about (and the keys deserve) nothing looser
    token = read_admin_token() or secrets.token_hex(24)
    write_atomic(TOKENS, f'{token},admin,admin,"system:masters"\n', 0o600)
    if not SA_KEY.exists():
        if shutil.which("openssl") is None:
            raise DevstackError("openssl is needed to make the service-account signing key")
        run(["openssl", "genrsa", "-out", str(SA_KEY), "2048"], what="openssl genrsa")
        os.chmod(SA_KEY, 0o600)
    run(["openssl", "rsa", "-in", str(SA_KEY), "-pubout", "-out", str(SA_PUB)], what="openssl rsa")
    shutil.copyfile(bin_dir / KWOK_STAGES, KWOK_CONFIG)
    write_atomic(AUDIT_POLICY, json.dumps(audit_policy(), indent=2) + "\n", 0o600)
    return token


def slipway_user() -> str:
    return f"system:serviceaccount:{KUBE_SLIPWAY_NAMESPACE}:{KUBE_SLIPWAY_ACCOUNT}"


def audit_policy() -> dict[str, Any]:
    """Metadata (who, verb, object; no bodies) of Slipway's account's requests only: the
    controllers and kwok make far more requests of their own, and the API server's /metrics
    cannot tell clients apart. RequestReceived is left out: a request is then one line (a watch's
    line comes when it starts, ResponseStarted, and another when it ends)."""
    return {
        "apiVersion": "audit.k8s.io/v1",
        "kind": "Policy",
        "omitStages": ["RequestReceived"],
        "rules": [
            {"level": "Metadata", "users": [slipway_user()]},
            {"level": "None"},
        ],
    }


def read_admin_token() -> str | None:
    try:
        return TOKENS.read_text().split(",", 1)[0].strip() or None
    except OSError:
        return None


def launch(bin_dir: Path, component: str, *args: str) -> int:
    cmd = [str(bin_dir / component), *args]
    return spawn(cmd, kube_log(component), KUBE_DIR, RUN / f"{component}.pid")


def start_etcd(bin_dir: Path) -> None:
    client = f"http://{HOST}:{kube_port('etcd')}"
    peer = f"http://{HOST}:{kube_port('etcd-peer')}"
    pid = launch(
        bin_dir,
        "etcd",
        "--name=devstack",
        f"--data-dir={KUBE_DIR / 'etcd'}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=devstack={peer}",
        "--unsafe-no-fsync=true",  # test data only: a crash may lose it, speed matters more
        "--quota-backend-bytes=4294967296",
        "--log-level=warn",
    )
    wait_healthy("etcd", pid, lambda: http_ok(client + "/health"))


def start_apiserver(bin_dir: Path) -> None:
    pid = launch(
        bin_dir,
        "kube-apiserver",
        f"--etcd-servers=http://{HOST}:{kube_port('etcd')}",
        f"--bind-address={HOST}",
        f"--advertise-address={HOST}",
        # the `kubernetes` Service's endpoints cannot be a loopback address: do not maintain them
        "--endpoint-reconciler-type=none",
        f"--secure-port={kube_port('kube-apiserver')}",
        f"--cert-dir={CERTS}",
        f"--token-auth-file={TOKENS}",
        "--authorization-mode=RBAC",
        "--service-account-issuer=https://kubernetes.default.svc",
        f"--service-account-key-file={SA_PUB}",
        f"--service-account-signing-key-file={SA_KEY}",
        f"--service-cluster-ip-range={KUBE_SERVICE_RANGE}",
        "--allow-privileged=true",
        f"--audit-policy-file={AUDIT_POLICY}",
        f"--audit-log-path={AUDIT_LOG}",
        f"--audit-log-maxsize={AUDIT_LOG_MAX_MB}",  # then rotated, one old file kept
        "--audit-log-maxbackup=1",
    )
    wait_healthy("kube-apiserver", pid, lambda: http_ok(kube_api_url() + "/readyz"))


def start_controllers(bin_dir: Path) -> None:
    """The controller manager (with it the ServiceAccount admission stays on, as on a real
    cluster), the scheduler and kwok, all as the admin; then their health."""
    admin = str(KUBE_ADMIN_CONFIG)
    common = (
        f"--kubeconfig={admin}",
        f"--authentication-kubeconfig={admin}",  # so that /healthz answers on the secure port
        f"--authorization-kubeconfig={admin}",
        "--leader-elect=false",
        f"--bind-address={HOST}",
    )
    kcm_port, sched_port = kube_port("kube-controller-manager"), kube_port("kube-scheduler")
    kcm = launch(
        bin_dir,
        "kube-controller-manager",
        *common,
        f"--secure-port={kcm_port}",
        "--controllers=*",
        f"--service-account-private-key-file={SA_KEY}",
        f"--root-ca-file={SERVING_CERT}",
        "--use-service-account-credentials=false",
        # a database's volume claim is bound as on a real cluster: the controller manager
        # provisions a hostPath volume (under /tmp/hostpath_pv) for the default StorageClass
        "--enable-hostpath-provisioner",
        # kwok's node posts no status the node lifecycle controller counts in time: with the
        # default 50 s the node went NotReady for ~5 s every ~55 s, which marked its pods
        # not Ready for good (kwok does not set them Ready again) and failed rollouts at random
        "--node-monitor-grace-period=1h",
    )
    sched = launch(bin_dir, "kube-scheduler", *common, f"--secure-port={sched_port}")
    kwok = launch(
        bin_dir,
        "kwok",
        f"--kubeconfig={admin}",
        f"--config={KWOK_CONFIG}",  # else kwok reads ~/.kwok/kwok.yaml
        "--manage-all-nodes=true",
        f"--cidr={KUBE_POD_RANGE}",
        f"--node-ip={HOST}",
    )
    wait_healthy(
        "kube-controller-manager", kcm, lambda: http_ok(f"https://{HOST}:{kcm_port}/healthz")
    )
    wait_healthy("kube-scheduler", sched, lambda: http_ok(f"https://{HOST}:{sched_port}/healthz"))
    if not pid_alive(kwok):
        raise DevstackError(f"kwok exited during startup:\n{tail(kube_log('kwok'))}")


def http_ok(url: str) -> bool:
    """True when a GET answers 200. TLS is not verified: this only probes our own loopback
    components, some of which serve a certificate made up in memory."""
    scheme, rest = url.split("://", 1)
    hostport, path = rest.split("/", 1)
    host, port = hostport.rsplit(":", 1)
    conn: http.client.HTTPConnection
    if scheme == "https":
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection(host, int(port), timeout=3.0, context=ctx)
    else:
        conn = http.client.HTTPConnection(host, int(port), timeout=3.0)
    try:
        conn.request("GET", "/" + path)
        resp = conn.getresponse()
        resp.read()
        return resp.status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def wait_healthy(component: str, pid: int, healthy: Callable[[], bool]) -> None:
    deadline = time.monotonic() + KUBE_READY_TIMEOUT
    while not healthy():
        if not pid_alive(pid):
            raise DevstackError(f"{component} exited during startup:\n{tail(kube_log(component))}")
        if time.monotonic() > deadline:
            raise DevstackError(
                f"{component} not healthy after {KUBE_READY_TIMEOUT:.0f}s; "
                f"see {kube_log(component)}"
            )
        time.sleep(0.2)


def kubeconfig_text(user: str, token: str) -> str:
    """A self-contained kubeconfig (JSON is YAML): the CA embedded, the API by IP address."""
    ca = base64.b64encode(SERVING_CERT.read_bytes()).decode()
    cluster, context = "slipway-devstack", f"{user}@slipway-devstack"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster,
                "cluster": {"server": kube_api_url(), "certificate-authority-data": ca},
            }
        ],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": context, "context": {"cluster": cluster, "user": user}}],
        "current-context": context,
    }
    return json.dumps(config, indent=2) + "\n"


def write_kubeconfig(path: Path, user: str, token: str) -> None:
    write_atomic(path, kubeconfig_text(user, token), 0o600)


def kubectl(bin_dir: Path, *args: str, stdin: str | None = None) -> str:
    cmd = [str(bin_dir / "kubectl"), f"--kubeconfig={KUBE_ADMIN_CONFIG}", *args]
    kw: dict[str, Any] = {"input": stdin, "stdin": None} if stdin is not None else {}
    return run(cmd, what=f"kubectl {' '.join(args[:2])}", **kw).stdout


def create_slipway_account(bin_dir: Path) -> None:
    """The deployer's ServiceAccount, its ClusterRole and a long-lived token (a Secret the
    controller manager fills in), then slipway.kubeconfig with that token."""
    kubectl(bin_dir, "apply", "-f", "-", stdin=json.dumps(slipway_account_manifests()))
    deadline = time.monotonic() + KUBE_READY_TIMEOUT
    account = f"{KUBE_SLIPWAY_NAMESPACE}/{KUBE_SLIPWAY_ACCOUNT}"
    get = ("-n", KUBE_SLIPWAY_NAMESPACE, "get", "secret", KUBE_SLIPWAY_ACCOUNT)
    while not (encoded := kubectl(bin_dir, *get, "-o", "jsonpath={.data.token}").strip()):
        if time.monotonic() > deadline:
            raise DevstackError(
                f"the token of ServiceAccount {account} was not issued within "
                f"{KUBE_READY_TIMEOUT:.0f}s; see {kube_log('kube-controller-manager')}"
            )
        time.sleep(0.2)
    write_kubeconfig(KUBE_SLIPWAY_CONFIG, KUBE_SLIPWAY_ACCOUNT, base64.b64decode(encoded).decode())


def kube_env_lines() -> list[str]:
    """The env file's lines for the cluster (only written when the switch is on)."""
    bin_dir = kube_bin_dir()
    return [
        f"SLIPWAY_KUBERNETES_API={kube_api_url()}",
        # the deployer's credentials (what a user registers); the admin's for tests and tools
        f"SLIPWAY_KUBERNETES_KUBECONFIG={KUBE_SLIPWAY_CONFIG}",
        f"SLIPWAY_KUBERNETES_ADMIN_KUBECONFIG={KUBE_ADMIN_CONFIG}",
        f"SLIPWAY_KUBECTL={bin_dir / 'kubectl'}",
        f"SLIPWAY_HELM={bin_dir / 'helm'}",
    ]


def kube_status_rows() -> list[tuple[str, int | None, str, Path]]:
    addresses = {
        "etcd": f"{HOST}:{kube_port('etcd')}",
        "kube-apiserver": kube_api_url(),
        "kube-controller-manager": f"{HOST}:{kube_port('kube-controller-manager')}",
        "kube-scheduler": f"{HOST}:{kube_port('kube-scheduler')}",
        "kwok": f"node {KUBE_NODE}",
    }
    return [(c, pid, addresses[c], kube_log(c)) for c, pid in kube_pids().items()]
