"""Kafka (KRaft, single node): its jars from Maven Central, its configuration and process, and a
wire-protocol probe that says when it is ready."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import shutil
import socket
import struct
import tempfile
import time
from pathlib import Path

from slipway_devstack.proc import (
    cache_dir,
    daemon_pid,
    kafka_controller_port,
    kafka_port,
    log,
    pid_alive,
    port_open,
    run,
    spawn,
    tail,
    terminate,
    write_atomic,
)
from slipway_devstack.settings import (
    DEFAULT_LOG4J_VERSION,
    DEPENDENCY_PLUGIN,
    HOST,
    KAFKA_ADMIN,
    KAFKA_CONTROLLER,
    KAFKA_DIR,
    KAFKA_LOG,
    KAFKA_OUT,
    KAFKA_PID,
    KAFKA_READY_TIMEOUT,
    KAFKA_STOP_TIMEOUT,
    KAFKA_USERS,
    KAFKA_VERSION,
    LOGS,
    PRINCIPALS,
    SCALA_VERSION,
    SCRAM,
    DevstackError,
    Ranges,
    Secrets,
)


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
    # 1 GiB: a test run starts a platform per module, each with its own topics and partitions
    cmd = java_cmd(libs, "kafka.Kafka", str(props), heap=("256m", "1g"))
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
