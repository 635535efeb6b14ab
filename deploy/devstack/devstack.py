#!/usr/bin/env python3
"""Slipway local dev stack: single-node Kafka (KRaft), PostgreSQL 15, an OCI registry, SMTP catcher.

Usage: python3 deploy/devstack/devstack.py up|down|status|env|clean|stop <component>

`stop` takes kafka, postgres, registry or mailcatcher. The SMTP catcher writes every mail it gets
to .devstack/mail/ instead of delivering it.

Stdlib only (runs before any virtualenv exists). State lives in <repo>/.devstack/, the Kafka
jars and the buildah storage are cached in $SLIPWAY_CACHE_DIR (default ~/.cache/slipway).
`up` pushes the base image slipway/busybox:latest (from Debian's busybox-static) to the registry
and writes <repo>/.devstack/env with the bootstrap servers, database URLs and registry.

The registry requires authentication (htpasswd, bcrypt): a deployed workload runs on the host
network and must not push or overwrite images. Its users are `admin` (the devstack, tests and
tools), `builder` and `deployer`, each with a password of its own in .devstack/secrets.json.
docker-registry's htpasswd has no per-user rights: every user may push and pull.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import functools
import hashlib
import hmac
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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

REPO = Path(__file__).resolve().parents[2]
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
MAIL_CATCHER = Path(__file__).resolve().with_name("mailcatcher.py")
MAIL_DIR = STATE / "mail"
MAIL_PID = RUN / "mailcatcher.pid"
MAIL_LOG = LOGS / "mailcatcher.log"
MAIL_READY_TIMEOUT = 10.0


class DevstackError(Exception):
    """A failure to report to the user without a traceback."""


# --- helpers


def log(msg: str) -> None:
    print(f"devstack: {msg}", flush=True)


def is_root() -> bool:
    return os.geteuid() == 0


def env_port(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise DevstackError(f"{name}={raw!r} is not a port number") from None


def kafka_port() -> int:
    return env_port("SLIPWAY_KAFKA_PORT", 19092)


def kafka_controller_port() -> int:
    return env_port("SLIPWAY_KAFKA_CONTROLLER_PORT", 19093)


def pg_port() -> int:
    return env_port("SLIPWAY_PG_PORT", 15432)


def registry_port() -> int:
    return env_port("SLIPWAY_REGISTRY_PORT", 15000)


def smtp_port() -> int:
    return env_port("SLIPWAY_SMTP_PORT", 15025)


def cache_dir() -> Path:
    raw = os.environ.get("SLIPWAY_CACHE_DIR")
    return Path(raw).expanduser() if raw else Path.home() / ".cache" / "slipway"


def write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        return True


def proc_cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def http_status(port: int, path: str, headers: dict[str, str] | None = None) -> int | None:
    """Status of a GET on loopback (no proxy), or None when nothing answers."""
    conn = http.client.HTTPConnection(HOST, port, timeout=3.0)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def daemon_pid(pid_file: Path, marker: str) -> int | None:
    """Pid from a pid file if that process runs with `marker` in its argv (else the file goes)."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    if pid_alive(pid) and marker in proc_cmdline(pid):
        return pid
    pid_file.unlink(missing_ok=True)
    return None


def spawn(cmd: list[str], out: Path, cwd: Path, pid_file: Path) -> int:
    """Start a detached daemon (own session), output appended to `out`; writes its pid file."""
    with open(out, "ab") as fh:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            start_new_session=True,
        )
    write_atomic(pid_file, f"{proc.pid}\n")
    return proc.pid


def terminate(pid: int, name: str, timeout: float) -> None:
    """SIGTERM, then SIGKILL after `timeout` seconds; returns once the process is gone."""
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if pid_alive(pid):
        log(f"{name} (pid {pid}) did not stop within {timeout:.0f}s, sending SIGKILL")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        while pid_alive(pid):
            time.sleep(0.1)


def port_open(port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


def run(cmd: list[str], *, what: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    """Run a command, capture output, raise DevstackError with its output on failure."""
    kw.setdefault("stdin", subprocess.DEVNULL)
    res = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if res.returncode != 0:
        out = (res.stdout + res.stderr).strip()
        raise DevstackError(f"{what} failed (exit {res.returncode}):\n{out}")
    return res


@contextlib.contextmanager
def state_lock() -> Iterator[None]:
    """Serialise concurrent devstack invocations on the same repo."""
    STATE.mkdir(parents=True, exist_ok=True)
    ignore = STATE / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n")
    with open(STATE / "lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


# --- tools


def psql_bin() -> str:
    own = PG_BIN / "psql"
    return str(own) if own.exists() else (shutil.which("psql") or "psql")


def elf_is_static(path: Path) -> bool:
    """True for an ELF executable without a program interpreter (no dynamic loader needed)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
            if head[:4] != b"\x7fELF":
                return False
            end = "<" if head[5] == 1 else ">"
            if head[4] == 2:  # ELFCLASS64
                (phoff,) = struct.unpack_from(end + "Q", head, 32)
                phentsize, phnum = struct.unpack_from(end + "HH", head, 54)
            else:
                (phoff,) = struct.unpack_from(end + "I", head, 28)
                phentsize, phnum = struct.unpack_from(end + "HH", head, 42)
            for i in range(phnum):
                fh.seek(phoff + i * phentsize)
                if struct.unpack(end + "I", fh.read(4))[0] == 3:  # PT_INTERP
                    return False
            return bool(phnum)
    except (OSError, struct.error):
        return False


def missing_tools() -> list[str]:
    commands = ("java", "mvn", "psql", "buildah", "docker-registry", "htpasswd")
    missing = [t for t in commands if shutil.which(t) is None]
    if not all((PG_BIN / b).exists() for b in ("initdb", "pg_ctl", "postgres")):
        missing.append("postgres")
    if not elf_is_static(BUSYBOX):  # absent, or the dynamic one of Debian's `busybox`
        missing.append("busybox")
    return missing


def ensure_tools() -> None:
    missing = missing_tools()
    if not missing:
        return
    pkgs = [APT_PACKAGES[t] for t in missing]
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", *pkgs]
    if not is_root():
        raise DevstackError(
            f"missing tools: {', '.join(missing)}. Install them with:\n"
            f"  sudo apt-get update && sudo {' '.join(cmd)}"
        )
    log(f"installing {' '.join(pkgs)} with apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(["apt-get", "update"], what="apt-get update", env=env)
    run(cmd, what="apt-get install", env=env)
    still = missing_tools()
    if still:
        raise DevstackError(f"still missing after apt-get install: {', '.join(still)}")


# --- kafka: jars


def kafka_libs() -> Path:
    return cache_dir() / f"kafka-{KAFKA_VERSION}" / "libs"


def pom_xml(extra: list[tuple[str, str, str]], managed: list[tuple[str, str, str]]) -> str:
    def dep(g: str, a: str, v: str) -> str:
        return (
            f"<dependency><groupId>{g}</groupId><artifactId>{a}</artifactId>"
            f"<version>{v}</version></dependency>"
        )

    deps = [dep("org.apache.kafka", f"kafka_{SCALA_VERSION}", KAFKA_VERSION)]
    deps += [dep(*d) for d in extra]
    mgmt = "".join(dep(*d) for d in managed)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.slipway</groupId>
  <artifactId>devstack-kafka</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencyManagement><dependencies>{mgmt}</dependencies></dependencyManagement>
  <dependencies>
    {(chr(10) + "    ").join(deps)}
  </dependencies>
</project>
"""


def mvn_copy(work: Path, pom: str, out: Path) -> None:
    work.mkdir(parents=True, exist_ok=True)
    (work / "pom.xml").write_text(pom)
    run(
        [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(work / "pom.xml"),
            f"{DEPENDENCY_PLUGIN}:copy-dependencies",
            f"-DoutputDirectory={out}",
            "-DincludeScope=runtime",
        ],
        what="maven dependency resolution",
        cwd=work,
    )


def jar_version(libs: Path, artifact: str) -> str | None:
    for jar in libs.glob(f"{artifact}-*.jar"):
        rest = jar.name[len(artifact) + 1 : -4]
        if rest[:1].isdigit():
            return rest
    return None


def ensure_kafka_libs() -> Path:
    """Resolve Kafka + a log4j2 backend into the cache (atomic rename when complete)."""
    libs = kafka_libs()
    if libs.is_dir():
        return libs
    libs.parent.mkdir(parents=True, exist_ok=True)
    for stale in libs.parent.glob(".resolve-*"):  # left by an interrupted run
        if time.time() - stale.stat().st_mtime > 3600:
            shutil.rmtree(stale, ignore_errors=True)
    log(f"resolving Kafka {KAFKA_VERSION} from Maven Central into {libs} (first run only)")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=libs.parent, prefix=".resolve-") as tmp:
        tmpd = Path(tmp)
        probe = tmpd / "probe-libs"
        mvn_copy(tmpd / "probe", pom_xml([], []), probe)
        slf4j = jar_version(probe, "slf4j-api")
        log4j = jar_version(probe, "log4j-api") or DEFAULT_LOG4J_VERSION
        if slf4j is None:
            raise DevstackError("slf4j-api not found on the Kafka runtime classpath")
        binding = "log4j-slf4j2-impl" if int(slf4j.split(".")[0]) >= 2 else "log4j-slf4j-impl"
        lg = "org.apache.logging.log4j"
        extra = [(lg, "log4j-core", log4j), (lg, binding, log4j)]
        managed = [(lg, "log4j-api", log4j), ("org.slf4j", "slf4j-api", slf4j)]
        staged = tmpd / "libs"
        mvn_copy(tmpd / "full", pom_xml(extra, managed), staged)
        if len(list(staged.glob("slf4j-api-*.jar"))) != 1 or not list(
            staged.glob(f"{binding}-*.jar")
        ):
            raise DevstackError(f"unexpected logging jars in {staged}")
        (staged / "SLF4J-BINDING").write_text(f"slf4j-api {slf4j} -> {binding} {log4j}\n")
        try:
            os.rename(staged, libs)
        except OSError:
            if not libs.is_dir():  # else another checkout finished the same resolution first
                raise
    log(
        f"resolved {len(list(libs.glob('*.jar')))} jars in {time.monotonic() - started:.0f}s "
        f"(slf4j-api {slf4j} -> {binding} {log4j})"
    )
    return libs


# --- kafka: config and process


def kafka_server_properties(data_dir: Path, pw: Secrets) -> str:
    """Every listener authenticates (deployed apps share the host network): clients with
    SASL/SCRAM as their own principal, the broker to its controller with SASL/PLAIN; ACLs with
    the StandardAuthorizer, deny unless an ACL allows (the admin and the controller are super
    users). SASL_PLAINTEXT: the listeners are on loopback only."""
    port, cport = kafka_port(), kafka_controller_port()
    admin, ctl = pw["kafka_admin"], pw["kafka_controller"]
    scram_login = "org.apache.kafka.common.security.scram.ScramLoginModule"
    plain_login = "org.apache.kafka.common.security.plain.PlainLoginModule"
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{HOST}:{cport}",
        "controller.listener.names": "CONTROLLER",
        "listeners": f"CLIENT://{HOST}:{port},CONTROLLER://{HOST}:{cport}",
        "advertised.listeners": f"CLIENT://{HOST}:{port}",
        "inter.broker.listener.name": "CLIENT",
        "listener.security.protocol.map": "CONTROLLER:SASL_PLAINTEXT,CLIENT:SASL_PLAINTEXT",
        "sasl.enabled.mechanisms": SCRAM,
        "sasl.mechanism.inter.broker.protocol": SCRAM,
        "listener.name.client.sasl.enabled.mechanisms": SCRAM,
        f"listener.name.client.{SCRAM.lower()}.sasl.jaas.config": (
            f'{scram_login} required username="{KAFKA_ADMIN}" password="{admin}";'
        ),
        "sasl.mechanism.controller.protocol": "PLAIN",
        "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
        "listener.name.controller.plain.sasl.jaas.config": (
            f'{plain_login} required username="{KAFKA_CONTROLLER}" password="{ctl}" '
            f'user_{KAFKA_CONTROLLER}="{ctl}";'
        ),
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": f"User:{KAFKA_ADMIN};User:{KAFKA_CONTROLLER}",
        "allow.everyone.if.no.acl.found": "false",
        "log.dirs": str(data_dir),
        "num.partitions": "3",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "auto.create.topics.enable": "false",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "4",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "4",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "share.coordinator.state.topic.num.partitions": "4",
        "group.initial.rebalance.delay.ms": "0",
        "log.cleaner.dedupe.buffer.size": "1048577",
        "num.recovery.threads.per.data.dir": "1",
    }
    return "".join(f"{k}={v}\n" for k, v in props.items())


def kafka_log4j_properties() -> str:
    return f"""status = warn
name = SlipwayDevstackKafka
appender.file.type = RollingFile
appender.file.name = FILE
appender.file.fileName = {KAFKA_LOG}
appender.file.filePattern = {KAFKA_LOG}.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 50MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
"""


def java_cmd(
    libs: Path, main: str, *args: str, heap: tuple[str, str] = ("64m", "256m")
) -> list[str]:
    return [
        "java",
        f"-Xms{heap[0]}",
        f"-Xmx{heap[1]}",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={KAFKA_DIR / 'log4j2.properties'}",
        f"-Dkafka.logs.dir={LOGS}",
        "-cp",
        f"{libs}/*",
        main,
        *args,
    ]


def kafka_pid() -> int | None:
    """Pid of our running broker, or None (stale pid files are removed)."""
    return daemon_pid(KAFKA_PID, "kafka.Kafka")


def write_kafka_config(data_dir: Path, pw: Secrets) -> Path:
    props = KAFKA_DIR / "server.properties"  # holds passwords: 0600
    write_atomic(props, kafka_server_properties(data_dir, pw), 0o600)
    write_atomic(KAFKA_DIR / "log4j2.properties", kafka_log4j_properties())
    return props


def kafka_users(pw: Secrets) -> dict[str, str]:
    """The SCRAM users: the admin and one principal per service."""
    return {KAFKA_ADMIN: pw["kafka_admin"], **{p: pw[f"kafka_{p}"] for p in PRINCIPALS}}


def kafka_users_digest(pw: Secrets) -> str:
    users = sorted(kafka_users(pw).items())
    return hashlib.sha256(json.dumps(users).encode()).hexdigest()


def format_kafka(libs: Path, data_dir: Path, pw: Secrets) -> None:
    """Format the KRaft storage once (into a temp dir renamed into place), seeding the SCRAM
    users. Storage formatted for other users (or none: a broker from before SASL) is formatted
    again: the devstack's topics are recreated by whoever uses them."""
    digest = kafka_users_digest(pw)
    formatted = (data_dir / "meta.properties").exists()
    if formatted and KAFKA_USERS.exists() and KAFKA_USERS.read_text().strip() == digest:
        return
    if formatted:
        log("Kafka storage was formatted for other SCRAM users: formatting it again (data lost)")
    staging = data_dir.with_name(data_dir.name + ".formatting")
    shutil.rmtree(staging, ignore_errors=True)
    cluster_id = (
        run(
            java_cmd(libs, "kafka.tools.StorageTool", "random-uuid"),
            what="kafka StorageTool random-uuid",
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    props = KAFKA_DIR / "format.properties"
    write_atomic(props, kafka_server_properties(staging, pw), 0o600)
    scram = [
        arg
        for name, password in kafka_users(pw).items()
        for arg in ("--add-scram", f"{SCRAM}=[name={name},password={password}]")
    ]
    try:
        fmt = ("format", "-t", cluster_id, "-c", str(props), *scram)
        run(java_cmd(libs, "kafka.tools.StorageTool", *fmt), what="kafka StorageTool format")
    finally:
        props.unlink(missing_ok=True)
    shutil.rmtree(data_dir, ignore_errors=True)
    os.rename(staging, data_dir)
    write_atomic(KAFKA_USERS, digest + "\n", 0o600)
    log(f"formatted Kafka storage (cluster id {cluster_id}) with {len(scram) // 2} SCRAM users")


def start_kafka(libs: Path, pw: Secrets) -> int:
    data_dir = KAFKA_DIR / "data"
    props = write_kafka_config(data_dir, pw)
    format_kafka(libs, data_dir, pw)
    cmd = java_cmd(libs, "kafka.Kafka", str(props), heap=("256m", "512m"))
    cmd.insert(4, "-XX:+ExitOnOutOfMemoryError")
    return spawn(cmd, KAFKA_OUT, KAFKA_DIR, KAFKA_PID)


def stop_kafka() -> bool:
    pid = kafka_pid()
    if pid is None:
        return False
    terminate(pid, "Kafka", KAFKA_STOP_TIMEOUT)
    KAFKA_PID.unlink(missing_ok=True)
    return True


# --- kafka: wire protocol probe


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by broker")
        buf += chunk
    return buf


def kafka_request(sock: socket.socket, api_key: int, version: int, corr: int, body: bytes) -> bytes:
    """Send one request (header v1) and return the response body after the correlation id."""
    client = b"slipway-devstack"
    msg = struct.pack(">hhih", api_key, version, corr, len(client)) + client + body
    sock.sendall(struct.pack(">i", len(msg)) + msg)
    (size,) = struct.unpack(">i", _recv_exact(sock, 4))
    data = _recv_exact(sock, size)
    if struct.unpack_from(">i", data)[0] != corr:
        raise ConnectionError("correlation id mismatch")
    return data[4:]


def _kstr(value: str) -> bytes:
    raw = value.encode()
    return struct.pack(">h", len(raw)) + raw


def _pick_version(ranges: Ranges, api_key: int, lo: int, hi: int, name: str) -> int:
    """Lowest version the broker supports within the range whose layout is implemented here."""
    blo, bhi = ranges.get(api_key, (0, -1))
    version = max(blo, lo)
    if version > min(bhi, hi):
        raise ConnectionError(f"broker supports {name} v{blo}-v{bhi} only")
    return version


def kafka_api_versions(sock: socket.socket) -> Ranges:
    data = kafka_request(sock, 18, 0, 1, b"")  # ApiVersions v0
    err, count = struct.unpack_from(">hi", data)
    if err:
        raise ConnectionError(f"ApiVersions error {err}")
    return {
        k: (lo, hi)
        for k, lo, hi in (struct.unpack_from(">hhh", data, 6 + 6 * i) for i in range(count))
    }


def kafka_brokers(sock: socket.socket, ranges: Ranges) -> list[tuple[int, str, int]]:
    """Metadata v4..v7 (same request, same response prefix) for no topics: the brokers."""
    version = _pick_version(ranges, 3, 4, 7, "Metadata")
    data = kafka_request(sock, 3, version, 2, struct.pack(">i?", 0, False))
    off = 4  # throttle_time_ms
    (n,) = struct.unpack_from(">i", data, off)
    off += 4
    brokers = []
    for _ in range(n):
        node, hlen = struct.unpack_from(">ih", data, off)
        host = data[off + 6 : off + 6 + hlen].decode()
        off += 6 + hlen
        bport, rlen = struct.unpack_from(">ih", data, off)
        off += 6 + max(rlen, 0)
        brokers.append((node, host, bport))
    return brokers


def kafka_coordinator_error(sock: socket.socket, ranges: Ranges, key: str, key_type: int) -> int:
    """FindCoordinator v1/v2 (creates __consumer_offsets / __transaction_state on first use)."""
    version = _pick_version(ranges, 10, 1, 2, "FindCoordinator")
    data = kafka_request(sock, 10, version, 3, _kstr(key) + struct.pack(">b", key_type))
    (error,) = struct.unpack_from(">h", data, 4)
    return int(error)


def _kbytes(data: bytes) -> bytes:
    return struct.pack(">i", len(data)) + data


def _scram_hmac(key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, hashlib.sha256).digest()


def kafka_authenticate(sock: socket.socket, ranges: Ranges, user: str, password: str) -> None:
    """SaslHandshake v1 + SaslAuthenticate v1 with SCRAM-SHA-256 (RFC 5802/7677)."""
    _pick_version(ranges, 17, 1, 1, "SaslHandshake")
    data = kafka_request(sock, 17, 1, 10, _kstr(SCRAM))
    if struct.unpack_from(">h", data)[0]:
        raise ConnectionError(f"the broker refused the SASL mechanism {SCRAM}")
    version = _pick_version(ranges, 36, 1, 1, "SaslAuthenticate")

    def exchange(corr: int, message: str) -> str:
        data = kafka_request(sock, 36, version, corr, _kbytes(message.encode()))
        error, mlen = struct.unpack_from(">hh", data)
        off = 4 + max(mlen, 0)
        if error:
            text = data[4:off].decode(errors="replace") if mlen > 0 else ""
            raise ConnectionError(f"SASL authentication as {user} failed: {text or error}")
        (alen,) = struct.unpack_from(">i", data, off)
        return data[off + 4 : off + 4 + alen].decode()

    nonce = secrets.token_urlsafe(18)
    first_bare = f"n={user},r={nonce}"
    server_first = exchange(11, "n,," + first_bare)
    fields = dict(item.split("=", 1) for item in server_first.split(","))
    if not fields["r"].startswith(nonce):
        raise ConnectionError("SCRAM: the server's nonce does not extend ours")
    salted = hashlib.pbkdf2_hmac(
        "sha256", password.encode(), base64.b64decode(fields["s"]), int(fields["i"])
    )
    client_key = _scram_hmac(salted, b"Client Key")
    final_bare = f"c=biws,r={fields['r']}"
    auth_message = f"{first_bare},{server_first},{final_bare}".encode()
    signature = _scram_hmac(hashlib.sha256(client_key).digest(), auth_message)
    proof = base64.b64encode(bytes(a ^ b for a, b in zip(client_key, signature, strict=True)))
    server_final = exchange(12, f"{final_bare},p={proof.decode()}")
    expected = _scram_hmac(_scram_hmac(salted, b"Server Key"), auth_message)
    if server_final != "v=" + base64.b64encode(expected).decode():
        raise ConnectionError("SCRAM: the server's signature does not verify")


def kafka_not_ready_reason(port: int, pw: Secrets, timeout: float = 3.0) -> str | None:
    """None when the broker is registered and its group/transaction coordinators answer (asked
    as the admin principal: every listener requires SASL)."""
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        ranges = kafka_api_versions(sock)
        kafka_authenticate(sock, ranges, KAFKA_ADMIN, pw["kafka_admin"])
        if not any(b[2] == port for b in kafka_brokers(sock, ranges)):
            return "metadata lists no broker yet"
        for key_type, what in ((0, "group"), (1, "transaction")):
            error = kafka_coordinator_error(sock, ranges, "slipway-devstack-probe", key_type)
            if error:
                return f"{what} coordinator not available yet (error {error})"
    return None


def wait_kafka(pid: int, pw: Secrets) -> None:
    port = kafka_port()
    deadline = time.monotonic() + KAFKA_READY_TIMEOUT
    last = "port closed"
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            raise DevstackError(
                f"Kafka exited during startup; see {KAFKA_LOG} and {KAFKA_OUT}:\n"
                f"{tail(KAFKA_OUT)}\n{tail(KAFKA_LOG)}"
            )
        if port_open(port, 0.5):
            try:
                last = kafka_not_ready_reason(port, pw) or ""
                if not last:
                    return
            except (OSError, ConnectionError, struct.error) as exc:
                last = f"metadata request failed: {exc}"
        time.sleep(0.5)
    raise DevstackError(
        f"Kafka not ready after {KAFKA_READY_TIMEOUT:.0f}s ({last}); "
        f"see {KAFKA_LOG} and {KAFKA_OUT}"
    )


# --- postgres: layout


def short_hash() -> str:
    return hashlib.sha256(str(REPO).encode()).hexdigest()[:12]


def as_pg_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", PG_SYSTEM_USER, "--", *cmd] if is_root() else cmd


@functools.cache
def pg_can_traverse(path: Path) -> bool:
    if not is_root():
        return True
    res = subprocess.run(as_pg_user(["test", "-x", str(path)]), cwd="/")
    return res.returncode == 0


def pg_fallback_dir() -> Path:
    if is_root():
        return PG_FALLBACK_ROOT / short_hash()
    return Path(tempfile.gettempdir()) / f"slipway-devstack-{os.getuid()}-{short_hash()}"


def pg_base() -> Path:
    """`.devstack/pg`: a real dir, or a symlink to the fallback dir if postgres can't reach it."""
    if PG_LINK.is_symlink() or PG_LINK.is_dir():
        return PG_LINK
    if pg_can_traverse(STATE):
        PG_LINK.mkdir()
    else:
        target = pg_fallback_dir() / "pg"
        target.mkdir(parents=True, exist_ok=True)
        PG_LINK.symlink_to(target)
        log(f"postgres cannot traverse {REPO}; PostgreSQL data lives in {target}")
    return PG_LINK


def pg_socket_dir() -> Path:
    """`.devstack/run`, unless the postgres user can't reach it or the socket path is too long."""
    sock_name = f".s.PGSQL.{pg_port()}"
    if pg_can_traverse(STATE) and len(str(RUN / sock_name)) < 100:
        return RUN
    return pg_fallback_dir() / "run"


def pg_log_file() -> Path:
    return LOGS / "postgres.log" if pg_can_traverse(STATE) else pg_fallback_dir() / "postgres.log"


def chown_pg(*paths: Path) -> None:
    if is_root():
        for p in paths:
            shutil.chown(p, PG_SYSTEM_USER, PG_SYSTEM_USER)


def pg_data() -> Path:
    """Resolved path: the postgres user may not be able to traverse the repo (fallback symlink)."""
    return PG_LINK.resolve() / "data"


def pg_pid() -> int | None:
    try:
        pid = int((pg_data() / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) and Path(f"/proc/{pid}/exe").resolve().name == "postgres" else None


# --- postgres: cluster


def pg_conf(sock_dir: Path) -> str:
    return f"""# written by deploy/devstack/devstack.py on every start
listen_addresses = '{HOST}'
port = {pg_port()}
unix_socket_directories = '{sock_dir}'
max_connections = 300
shared_buffers = 128MB
fsync = on
synchronous_commit = on
full_page_writes = on
password_encryption = scram-sha-256
timezone = 'UTC'
log_timezone = 'UTC'
log_min_messages = warning
log_connections = off
"""


PG_HBA = f"""# written by deploy/devstack/devstack.py
local   all   {PG_ADMIN}   trust
host    all   all          127.0.0.1/32   scram-sha-256
"""


def init_pg() -> None:
    """initdb once into a staging dir, then rename it into place."""
    base = pg_base().resolve()
    data = pg_data()
    if (data / "PG_VERSION").exists():
        return
    staging = base / "data.initdb"
    shutil.rmtree(staging, ignore_errors=True)
    base.mkdir(parents=True, exist_ok=True)  # a fallback target may have been removed
    chown_pg(base)
    run(
        as_pg_user(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(staging),
                "-U",
                PG_ADMIN,
                "--no-locale",
                "-E",
                "UTF8",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ]
        ),
        what="initdb",
        cwd="/",
    )
    with open(staging / "postgresql.conf", "a") as fh:
        fh.write("\ninclude 'slipway-devstack.conf'\n")
    shutil.rmtree(data, ignore_errors=True)
    os.rename(staging, data)
    log(f"initialised PostgreSQL cluster in {data.resolve()}")


def write_pg_config(sock_dir: Path) -> None:
    data = pg_data()
    write_atomic(data / "slipway-devstack.conf", pg_conf(sock_dir), 0o600)
    write_atomic(data / "pg_hba.conf", PG_HBA, 0o600)
    chown_pg(data / "slipway-devstack.conf", data / "pg_hba.conf")


def start_pg() -> int:
    init_pg()
    sock_dir, log_file = pg_socket_dir(), pg_log_file()
    sock_dir.mkdir(parents=True, exist_ok=True)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    log_file.touch()
    chown_pg(sock_dir, log_file)
    write_pg_config(sock_dir)
    cmd = as_pg_user(
        [
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(pg_data()),
            "-l",
            str(log_file),
            "-w",
            "-t",
            str(int(PG_READY_TIMEOUT)),
            "start",
        ]
    )
    res = subprocess.run(
        cmd,
        cwd="/",
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        start_new_session=True,
    )
    if res.returncode != 0:
        raise DevstackError(f"PostgreSQL failed to start; see {log_file}:\n{tail(log_file)}")
    pid = pg_pid()
    if pid is None:
        raise DevstackError(f"PostgreSQL started but postmaster.pid is unreadable; see {log_file}")
    return pid


def stop_pg() -> bool:
    if pg_pid() is None:
        return False
    run(
        as_pg_user(
            [str(PG_BIN / "pg_ctl"), "-D", str(pg_data()), "-m", "fast", "-w", "-t", "60", "stop"]
        ),
        what="pg_ctl stop",
        cwd="/",
    )
    return True


def load_secrets() -> Secrets:
    """Passwords generated once (first init) and kept in .devstack/secrets.json."""
    data: Secrets = {}
    with contextlib.suppress(OSError, ValueError):
        data = {str(k): str(v) for k, v in json.loads(SECRETS_FILE.read_text()).items()}
    changed = False
    # PostgreSQL roles, Kafka principals (hex: safe in JAAS and in the storage tool's syntax)
    keys = ("admin", *SERVICES, "kafka_admin", "kafka_controller")
    registry = (f"registry_{u}" for u in (REGISTRY_ADMIN, *REGISTRY_SERVICES))
    for key in (*keys, *(f"kafka_{p}" for p in PRINCIPALS), *registry):
        if not data.get(key):
            data[key] = secrets.token_hex(16)
            changed = True
    # application secrets of the dev platform: the internal-call token and AES-256 sealing keys
    app_secrets: dict[str, Callable[[], str]] = {
        **{f"internal_token_{p}": lambda: secrets.token_urlsafe(32) for p in PRINCIPALS},
        "identity_sealing_key": lambda: base64.b64encode(secrets.token_bytes(32)).decode(),
        "catalog_sealing_key": lambda: base64.b64encode(secrets.token_bytes(32)).decode(),
    }
    for key, make in app_secrets.items():
        if not data.get(key):
            data[key] = make()
            changed = True
    if changed:
        write_atomic(SECRETS_FILE, json.dumps(data, indent=2) + "\n", 0o600)
    return data


def provisioning_sql(pw: Secrets) -> str:
    lines = [
        "\\set ON_ERROR_STOP on",
        f"ALTER ROLE {PG_ADMIN} WITH PASSWORD '{pw['admin']}';",
        "REVOKE CONNECT, TEMPORARY ON DATABASE postgres FROM PUBLIC;",
        "REVOKE CONNECT, TEMPORARY ON DATABASE template1 FROM PUBLIC;",
    ]
    for svc in SERVICES:
        name = f"slipway_{svc}"
        lines += [
            f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{name}') "
            f"THEN CREATE ROLE {name}; END IF; END $$;",
            f"ALTER ROLE {name} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
            f"NOBYPASSRLS PASSWORD '{pw[svc]}';",
            f"SELECT 'CREATE DATABASE {name} OWNER {name}' WHERE NOT EXISTS "
            f"(SELECT 1 FROM pg_database WHERE datname = '{name}') \\gexec",
            f"ALTER DATABASE {name} OWNER TO {name};",
            f"REVOKE CONNECT, TEMPORARY ON DATABASE {name} FROM PUBLIC;",
            f"GRANT CONNECT, TEMPORARY ON DATABASE {name} TO {name};",
        ]
    return "\n".join(lines) + "\n"


# Only the platform's own databases (and postgres/template1) are checked: test fixtures create
# throwaway databases through the admin role, and those are theirs to manage.
ISOLATION_CHECK = """SELECT r.rolname || ' -> ' || d.datname
FROM pg_roles r CROSS JOIN pg_database d
WHERE r.rolname = ANY(%s) AND d.datallowconn
  AND (d.datname LIKE 'slipway\\_%%' OR d.datname IN ('postgres', 'template1'))
  AND has_database_privilege(r.oid, d.oid, 'CONNECT') <> (d.datname = r.rolname);"""


def admin_socket_psql(*args: str, sql: str | None = None, what: str) -> str:
    cmd = [
        psql_bin(),
        "-X",
        "-q",
        "-A",
        "-t",
        "-h",
        str(pg_socket_dir()),
        "-p",
        str(pg_port()),
        "-U",
        PG_ADMIN,
        "-d",
        "postgres",
        *args,
    ]
    return run(
        cmd, what=what, input=sql, stdin=None if sql is not None else subprocess.DEVNULL, cwd="/"
    ).stdout


def provision_pg(pw: Secrets) -> None:
    """Idempotently create roles/databases, then verify each role reaches only its database."""
    admin_socket_psql("-f", "-", sql=provisioning_sql(pw), what="PostgreSQL provisioning")
    roles = "ARRAY[" + ",".join(f"'slipway_{s}'" for s in SERVICES) + "]"
    bad = admin_socket_psql(
        "-c", ISOLATION_CHECK % roles, what="PostgreSQL isolation check"
    ).strip()
    if bad:
        raise DevstackError(
            f"database isolation check failed (unexpected CONNECT privilege):\n{bad}"
        )


def wait_pg(pw: Secrets) -> None:
    env = dict(os.environ, PGPASSWORD=pw["admin"], PGCONNECT_TIMEOUT="3")
    url = f"postgresql://{PG_ADMIN}@{HOST}:{pg_port()}/postgres"
    deadline = time.monotonic() + PG_READY_TIMEOUT
    while True:
        res = subprocess.run(
            [psql_bin(), "-X", "-At", url, "-c", "select 1"],
            env=env,
            cwd="/",
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        if res.returncode == 0 and res.stdout.strip() == "1":
            return
        if time.monotonic() > deadline:
            raise DevstackError(
                f"PostgreSQL not answering on {HOST}:{pg_port()}: "
                f"{res.stderr.strip()}; see {pg_log_file()}"
            )
        time.sleep(0.5)


# --- registry


def registry_address() -> str:
    return f"{HOST}:{registry_port()}"


def registry_users(pw: Secrets) -> dict[str, str]:
    return {u: pw[f"registry_{u}"] for u in (REGISTRY_ADMIN, *REGISTRY_SERVICES)}


def registry_basic(pw: Secrets) -> str:
    """The admin's `Authorization` header value (Basic)."""
    raw = f"{REGISTRY_ADMIN}:{pw[f'registry_{REGISTRY_ADMIN}']}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def write_htpasswd(pw: Secrets) -> None:
    """bcrypt entries made by apache2-utils' htpasswd, the password on its stdin (not argv)."""
    lines = []
    for user, password in registry_users(pw).items():
        cmd = ["htpasswd", "-niB", "-C", "10", user]
        out = run(cmd, what=f"htpasswd {user}", input=password, stdin=None).stdout
        lines.append(out.strip())
    write_atomic(REGISTRY_HTPASSWD, "\n".join(lines) + "\n", 0o600)


def registry_config() -> str:
    data = json.dumps(str(REGISTRY_DIR / "data"))  # a JSON string is a YAML string
    htpasswd = json.dumps(str(REGISTRY_HTPASSWD))
    return f"""# written by deploy/devstack/devstack.py on every start
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {data}
  delete:
    enabled: true
http:
  addr: {registry_address()}
  secret: {secrets.token_hex(16)}
auth:
  htpasswd:
    realm: slipway-devstack
    path: {htpasswd}
"""


def registry_pid() -> int | None:
    return daemon_pid(REGISTRY_PID, str(REGISTRY_CONFIG))


def registry_authenticates() -> bool:
    """True when the running registry refuses a request without credentials (a registry started
    by an older devstack did not: it is restarted)."""
    return http_status(registry_port(), "/v2/") == 401


def start_registry(pw: Secrets) -> int:
    (REGISTRY_DIR / "data").mkdir(parents=True, exist_ok=True)
    write_htpasswd(pw)
    write_atomic(REGISTRY_CONFIG, registry_config(), 0o600)
    cmd = ["docker-registry", "serve", str(REGISTRY_CONFIG)]
    return spawn(cmd, REGISTRY_LOG, REGISTRY_DIR, REGISTRY_PID)


def wait_registry(pid: int, pw: Secrets) -> None:
    deadline = time.monotonic() + REGISTRY_READY_TIMEOUT
    auth = {"Authorization": registry_basic(pw)}
    while http_status(registry_port(), "/v2/", auth) != 200:
        if not pid_alive(pid):
            raise DevstackError(f"the registry exited during startup:\n{tail(REGISTRY_LOG)}")
        if time.monotonic() > deadline:
            raise DevstackError(
                f"registry not answering GET http://{registry_address()}/v2/ after "
                f"{REGISTRY_READY_TIMEOUT:.0f}s; see {REGISTRY_LOG}"
            )
        time.sleep(0.2)


def stop_registry() -> bool:
    pid = registry_pid()
    if pid is None:
        return False
    terminate(pid, "the registry", REGISTRY_STOP_TIMEOUT)
    REGISTRY_PID.unlink(missing_ok=True)
    return True


# --- SMTP catcher (invitation mails of the dev platform land in .devstack/mail/*.eml)


def mail_pid() -> int | None:
    return daemon_pid(MAIL_PID, str(MAIL_CATCHER))


def start_mail() -> None:
    if not port_free(smtp_port()):
        raise DevstackError(
            f"port {HOST}:{smtp_port()} is already in use by a process that is not this "
            "devstack's SMTP catcher (see `ss -ltnp`); stop it or set SLIPWAY_SMTP_PORT"
        )
    MAIL_DIR.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(MAIL_CATCHER), "--port", str(smtp_port()), "--dir", str(MAIL_DIR)]
    pid = spawn(cmd, MAIL_LOG, STATE, MAIL_PID)
    deadline = time.monotonic() + MAIL_READY_TIMEOUT
    while not port_open(smtp_port(), 0.5):
        if not pid_alive(pid) or time.monotonic() > deadline:
            raise DevstackError(f"the SMTP catcher did not start:\n{tail(MAIL_LOG)}")
        time.sleep(0.1)


def stop_mail() -> bool:
    pid = mail_pid()
    if pid is None:
        return False
    terminate(pid, "the SMTP catcher", REGISTRY_STOP_TIMEOUT)
    MAIL_PID.unlink(missing_ok=True)
    return True


# --- base image (buildah, storage in the cache: the same flags the builder gets via the env)


def buildah_root() -> Path:
    return cache_dir() / "buildah" / "root"


def buildah_runroot() -> Path:
    return cache_dir() / "buildah" / "runroot"


def buildah(*args: str, what: str) -> str:
    storage = ["--root", str(buildah_root()), "--runroot", str(buildah_runroot())]
    cmd = ["buildah", *storage, "--storage-driver", "vfs", *args]
    return run(cmd, what=f"buildah {what}", cwd="/").stdout.strip()


def base_image_ref() -> str:
    return f"{registry_address()}/{BASE_REPOSITORY}:{BASE_TAG}"


def base_image_present(pw: Secrets) -> bool:
    path = f"/v2/{BASE_REPOSITORY}/manifests/{BASE_TAG}"
    headers = {"Accept": MANIFEST_TYPES, "Authorization": registry_basic(pw)}
    return http_status(registry_port(), path, headers) == 200


def install_applets(ctr: str) -> None:
    """/bin/sh, httpd, ... as symlinks to /bin/busybox: by busybox itself, else prepared here."""
    try:
        buildah(
            "run",
            "--isolation",
            "chroot",
            ctr,
            "--",
            str(BUSYBOX),
            "--install",
            "-s",
            "/bin",
            what="run busybox --install",
        )
        return
    except DevstackError as exc:
        log(f"`buildah run` is not possible here, copying prepared symlinks instead ({exc})")
    applets = run([str(BUSYBOX), "--list"], what="busybox --list").stdout.split()
    with tempfile.TemporaryDirectory(prefix="slipway-busybox-") as tmp:
        for name in applets:
            if name != "busybox" and "/" not in name:
                os.symlink(str(BUSYBOX), Path(tmp) / name)
        buildah("copy", ctr, tmp, "/bin", what="copy applet symlinks")


@contextlib.contextmanager
def registry_authfile(pw: Secrets) -> Iterator[Path]:
    """A 0600 containers-auth.json with the admin's credentials, removed afterwards (buildah's
    `--creds` would put the password in its argv, which every user can read)."""
    raw = f"{REGISTRY_ADMIN}:{pw[f'registry_{REGISTRY_ADMIN}']}".encode()
    auths = {"auths": {registry_address(): {"auth": base64.b64encode(raw).decode()}}}
    fd, name = tempfile.mkstemp(prefix=".auth-", suffix=".json", dir=RUN)  # mode 0600
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(auths, fh)
        yield Path(name)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)


def build_base_image(pw: Secrets) -> None:
    """scratch + static busybox and its applets, committed and pushed to the devstack registry."""
    started = time.monotonic()
    name = f"{BASE_REPOSITORY}:{BASE_TAG}"
    log(f"building {name} from {BUSYBOX} (busybox-static) and pushing it to {registry_address()}")
    ctr = buildah("from", "scratch", what="from scratch")
    try:
        buildah("copy", ctr, str(BUSYBOX), str(BUSYBOX), what="copy busybox")
        install_applets(ctr)
        buildah(
            "config",
            "--entrypoint",
            "[]",
            "--cmd",
            '["/bin/sh"]',
            "--env",
            "PATH=/bin:/usr/bin",
            "--label",
            "org.opencontainers.image.title=slipway-busybox",
            ctr,
            what="config",
        )
        buildah("commit", "--quiet", ctr, name, what="commit")
    finally:
        with contextlib.suppress(DevstackError):
            buildah("rm", ctr, what="rm")
    with registry_authfile(pw) as authfile:
        buildah(
            "push",
            "--quiet",
            "--tls-verify=false",
            "--authfile",
            str(authfile),
            name,
            f"docker://{base_image_ref()}",
            what="push",
        )
    log(f"pushed {base_image_ref()} in {time.monotonic() - started:.1f}s")


def ensure_base_image(pw: Secrets) -> bool:
    """Build and push the base image unless the registry already has it; True when built."""
    if base_image_present(pw):
        return False
    build_base_image(pw)
    if not base_image_present(pw):
        raise DevstackError(f"{base_image_ref()} is not in the registry after the push")
    return True


# --- env file and status


def env_text(pw: Secrets) -> str:
    bootstrap = f"{HOST}:{kafka_port()}"
    pg = f"{HOST}:{pg_port()}"
    lines = [
        f"KAFKA_BOOTSTRAP_SERVERS={bootstrap}",
        f"SLIPWAY_KAFKA_BOOTSTRAP_SERVERS={bootstrap}",
        f"SLIPWAY_PG_ADMIN_URL=postgresql://{PG_ADMIN}:{pw['admin']}@{pg}/postgres",
    ]
    lines += [
        f"SLIPWAY_{s.upper()}_DATABASE_URL=postgresql://slipway_{s}:{pw[s]}@{pg}/slipway_{s}"
        for s in SERVICES
    ]
    lines += [
        # Kafka: SASL/SCRAM; the admin principal is for the devstack, the tests and the tools
        f"SLIPWAY_KAFKA_SASL_MECHANISM={SCRAM}",
        f"SLIPWAY_KAFKA_ADMIN_USERNAME={KAFKA_ADMIN}",
        f"SLIPWAY_KAFKA_ADMIN_PASSWORD={pw['kafka_admin']}",
    ]
    for p in PRINCIPALS:
        lines += [
            f"SLIPWAY_{p.upper()}_KAFKA_USERNAME={p}",
            f"SLIPWAY_{p.upper()}_KAFKA_PASSWORD={pw[f'kafka_{p}']}",
            # the token this service presents to other services' internal APIs
            f"SLIPWAY_{p.upper()}_INTERNAL_TOKEN={pw[f'internal_token_{p}']}",
        ]
    # the callers each service's internal API accepts, by the SHA-256 of their tokens (so that
    # a service cannot present another's token): today only the gateway calls internal APIs
    gateway = hashlib.sha256(pw["internal_token_gateway"].encode()).hexdigest()
    lines += [f"SLIPWAY_{s.upper()}_INTERNAL_CALLERS=gateway:{gateway}" for s in SERVICES]
    lines += [
        f"SLIPWAY_IDENTITY_SEALING_KEYS=dev1:{pw['identity_sealing_key']}",
        f"SLIPWAY_CATALOG_SEALING_KEYS=dev1:{pw['catalog_sealing_key']}",
        f"SLIPWAY_REGISTRY={registry_address()}",
        # the registry's admin (tests, tools); the builder and the deployer have users of their own
        f"SLIPWAY_REGISTRY_USERNAME={REGISTRY_ADMIN}",
        f"SLIPWAY_REGISTRY_PASSWORD={pw[f'registry_{REGISTRY_ADMIN}']}",
        *(
            line
            for s in REGISTRY_SERVICES
            for line in (
                f"SLIPWAY_{s.upper()}_REGISTRY_USERNAME={s}",
                f"SLIPWAY_{s.upper()}_REGISTRY_PASSWORD={pw[f'registry_{s}']}",
            )
        ),
        f"SLIPWAY_BASE_IMAGE={base_image_ref()}",
        f"SLIPWAY_BUILDAH_ROOT={buildah_root()}",
        f"SLIPWAY_BUILDAH_RUNROOT={buildah_runroot()}",
        "SLIPWAY_BUILDAH_STORAGE_DRIVER=vfs",
        # invitation mails go to the SMTP catcher (the platform started by tests sends none)
        f"SLIPWAY_IDENTITY_SMTP_HOST={HOST}",
        f"SLIPWAY_IDENTITY_SMTP_PORT={smtp_port()}",
    ]
    return "\n".join(lines) + "\n"


def status_lines() -> tuple[list[str], bool]:
    kpid, ppid = kafka_pid(), pg_pid() if PG_LINK.exists() else None
    rpid, mpid = registry_pid(), mail_pid()
    kport, cport, pport = kafka_port(), kafka_controller_port(), pg_port()
    rows = [
        ("kafka", kpid, f"{HOST}:{kport} (controller {cport})", KAFKA_LOG),
        ("postgres", ppid, f"{HOST}:{pport}", pg_log_file() if PG_LINK.exists() else None),
        ("registry", rpid, registry_address(), REGISTRY_LOG),
        ("mail", mpid, f"{HOST}:{smtp_port()} -> {MAIL_DIR}", MAIL_LOG),
    ]
    lines = []
    for name, pid, addr, logf in rows:
        state = f"running  pid {pid:<7}" if pid else "stopped  pid -      "
        lines.append(f"{name:<9}{state} {addr}" + (f"  log {logf}" if pid and logf else ""))
    return lines, bool(kpid and ppid and rpid and mpid)


# --- commands


def check_ports_free(kafka: bool, pg: bool, registry: bool) -> None:
    """Before starting anything: the ports of the components to start must not be taken."""
    wanted = []
    if kafka:
        wanted += [
            (kafka_port(), "Kafka", "SLIPWAY_KAFKA_PORT"),
            (kafka_controller_port(), "Kafka controller", "SLIPWAY_KAFKA_CONTROLLER_PORT"),
        ]
    if pg:
        wanted.append((pg_port(), "PostgreSQL", "SLIPWAY_PG_PORT"))
    if registry:
        wanted.append((registry_port(), "registry", "SLIPWAY_REGISTRY_PORT"))
    for port, name, var in wanted:
        if not port_free(port):
            raise DevstackError(
                f"port {HOST}:{port} is already in use by a process that is not this "
                f"devstack's {name} (see `ss -ltnp`); stop it or set {var}"
            )


def cmd_up() -> int:
    started_at = time.monotonic()
    with state_lock():
        lines, all_up = status_lines()
        pw = load_secrets()  # generated once, kept in .devstack/secrets.json
        if (
            all_up
            and ENV_FILE.exists()
            and "SLIPWAY_REGISTRY_PASSWORD=" in ENV_FILE.read_text()
            and registry_authenticates()
            and base_image_present(pw)
        ):
            print("devstack already running:")
            print("\n".join("  " + line for line in lines))
            return 0
        ensure_tools()
        for d in (RUN, LOGS, KAFKA_DIR, REGISTRY_DIR):
            d.mkdir(parents=True, exist_ok=True)
        libs = ensure_kafka_libs()
        started = []
        kpid, rpid = kafka_pid(), registry_pid()
        if rpid is not None and not registry_authenticates():
            log("the registry runs without authentication (an older devstack): restarting it")
            stop_registry()
            rpid = None
        check_ports_free(kafka=kpid is None, pg=pg_pid() is None, registry=rpid is None)
        if kpid is None:
            kpid = start_kafka(libs, pw)  # boots in the background while Postgres starts
            started.append("kafka")
        if rpid is None:
            rpid = start_registry(pw)
            started.append("registry")
        if mail_pid() is None:
            start_mail()
            started.append("mailcatcher")
        if pg_pid() is None:
            start_pg()
            started.append("postgres")
        provision_pg(pw)
        wait_pg(pw)
        wait_registry(rpid, pw)
        if ensure_base_image(pw):
            started.append(f"base image {BASE_REPOSITORY}:{BASE_TAG} (built and pushed)")
        wait_kafka(kpid, pw)
        write_atomic(ENV_FILE, env_text(pw), 0o600)
        lines, _ = status_lines()
    what = ", ".join(started) if started else "nothing (already running)"
    print(f"devstack up in {time.monotonic() - started_at:.1f}s; started: {what}")
    print("\n".join("  " + line for line in lines))
    print(f"  env file {ENV_FILE}  (load with: set -a; . {ENV_FILE}; set +a)")
    return 0


def cmd_down() -> int:
    with state_lock():
        stopped = [
            name
            for name, fn in (
                ("kafka", stop_kafka),
                ("postgres", lambda: PG_LINK.exists() and stop_pg()),
                ("registry", stop_registry),
                ("mailcatcher", stop_mail),
            )
            if fn()
        ]
    print(f"devstack down; stopped: {', '.join(stopped) if stopped else 'nothing (not running)'}")
    return 0


def cmd_stop(component: str) -> int:
    """Stop one component (fault tests use it to make Kafka or PostgreSQL briefly unavailable)."""
    stoppers: dict[str, Callable[[], bool]] = {
        "kafka": stop_kafka,
        "postgres": lambda: PG_LINK.exists() and stop_pg(),
        "registry": stop_registry,
        "mailcatcher": stop_mail,
    }
    if component not in stoppers:
        print(f"devstack: stop takes one of {', '.join(stoppers)}", file=sys.stderr)
        return 2
    with state_lock():
        stopped = stoppers[component]()
    print(f"devstack: {component} {'stopped' if stopped else 'was not running'}")
    return 0


def cmd_status() -> int:
    lines, all_up = status_lines()
    print("\n".join(lines))
    return 0 if all_up else 3


def cmd_env() -> int:
    if not ENV_FILE.exists():
        print(f"devstack: no env file yet ({ENV_FILE}); run `up` first", file=sys.stderr)
        return 1
    sys.stdout.write(ENV_FILE.read_text())
    return 0


def cmd_clean() -> int:
    cmd_down()
    fallback = pg_fallback_dir()  # data (untraversable repo) or socket dir (long repo path)
    if fallback.exists():
        shutil.rmtree(fallback, ignore_errors=True)
        with contextlib.suppress(OSError):
            fallback.parent.rmdir()  # only when empty
    shutil.rmtree(STATE, ignore_errors=True)
    print(f"devstack cleaned: removed {STATE} (cache {cache_dir()}, with buildah's images, kept)")
    return 0


COMMANDS = {
    "up": cmd_up,
    "down": cmd_down,
    "status": cmd_status,
    "env": cmd_env,
    "clean": cmd_clean,
}


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "stop":
        return cmd_stop(argv[1])
    if len(argv) != 1 or argv[0] not in COMMANDS:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    try:
        return COMMANDS[argv[0]]()
    except DevstackError as exc:
        print(f"devstack: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
