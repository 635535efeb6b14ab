"""A throwaway single-node Kafka broker without authentication (or, for comparison, with the
devstack's SASL/SCRAM and ACLs), beside the devstack's, so that a benchmark can measure what
SASL/SCRAM and ACLs cost in the same run, on the same machine.

Built from the devstack's own pieces (``deploy/devstack/slipway_devstack/kafka.py``): its cached
Kafka jars, its JVM command line and its ``server.properties``, with every authentication and
authorization setting taken out and the listeners moved to two free ports on 127.0.0.1 (PLAINTEXT).
So the two brokers differ in what is measured, not in their tuning. ``throwaway_broker(sasl=True)``
keeps the authentication settings instead, with SCRAM users and passwords of its own (an admin
super user and the principals asked for): the same as the devstack's broker, but as fresh and as
idle as the plain one. The broker lives in a temporary directory; it is stopped and the directory
deleted when the block ends, also on failure or Ctrl-C. The devstack's broker is not touched: it
keeps every listener authenticated."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
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
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from slipway_libs.settings import KafkaConnection
from slipway_libs.testing.platform import free_port

DEVSTACK_DIR = Path(__file__).resolve().parents[1] / "deploy" / "devstack"
HOST = "127.0.0.1"
READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0
# the settings of authentication and authorization in the devstack's server.properties
AUTH_SETTINGS = (
    "sasl.",
    "listener.name.",
    "authorizer.class.name",
    "super.users",
    "allow.everyone.if.no.acl.found",
)


@dataclass(frozen=True)
class PlainBroker:
    kafka: KafkaConnection  # no principal (PLAINTEXT); with SASL, the admin super user's
    home: Path  # its directory: data, config, logs/kafka.log (the JVM's command line names it)
    pid: int
    passwords: dict[str, str] = field(default_factory=dict)  # with SASL: principal -> password


def devstack_module() -> ModuleType:
    """The devstack's Kafka module (``deploy/devstack/slipway_devstack/kafka.py``: stdlib only,
    not installed in the workspace), imported from its directory."""
    if str(DEVSTACK_DIR) not in sys.path:
        sys.path.insert(0, str(DEVSTACK_DIR))
    return importlib.import_module("slipway_devstack.kafka")


def server_properties(
    devstack: ModuleType,
    data_dir: Path,
    port: int,
    cport: int,
    passwords: dict[str, str] | None = None,
) -> str:
    """The devstack broker's properties on other ports: without authentication, or, given the
    admin's and the controller's ``passwords``, with the devstack's SASL and authorizer."""
    pw = passwords or {"kafka_admin": "unused", "kafka_controller": "unused"}
    lines = devstack.kafka_server_properties(data_dir, pw).splitlines()
    props = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    ports = {
        "controller.quorum.voters": f"1@{HOST}:{cport}",
        "listeners": f"CLIENT://{HOST}:{port},CONTROLLER://{HOST}:{cport}",
        "advertised.listeners": f"CLIENT://{HOST}:{port}",
    }
    if passwords is not None:
        return "".join(f"{k}={v}\n" for k, v in (props | ports).items())
    kept = {k: v for k, v in props.items() if not k.startswith(AUTH_SETTINGS)}
    kept |= ports | {"listener.security.protocol.map": "CONTROLLER:PLAINTEXT,CLIENT:PLAINTEXT"}
    text = "".join(f"{k}={v}\n" for k, v in kept.items())
    if "SASL" in text.upper() or "jaas" in text:  # the devstack grew a setting not taken out
        raise RuntimeError(f"plain broker: authentication left in its properties:\n{text}")
    return text


def java_cmd(devstack: ModuleType, home: Path, main: str, *args: str) -> list[str]:
    """The devstack's JVM command line, logging into ``home/logs`` instead of the devstack's."""
    libs = devstack.kafka_libs()
    if not libs.is_dir():
        raise RuntimeError(f"no Kafka jars in {libs}: run `make infra-up` first")
    cmd = devstack.java_cmd(libs, main, *args, heap=("256m", "512m"))
    ours = (f"-Dlog4j2.configurationFile={home / 'log4j2.properties'}", f"-Dkafka.logs.dir={home}")
    cmd = [a for a in cmd if not a.startswith(("-Dlog4j2.configurationFile=", "-Dkafka.logs.dir="))]
    return [cmd[0], *ours, "-XX:+ExitOnOutOfMemoryError", *cmd[1:]]


def _format(devstack: ModuleType, home: Path, props: Path, users: dict[str, str]) -> None:
    """Format the storage (as the devstack does), seeding the SCRAM ``users`` if any."""
    uuid_cmd = java_cmd(devstack, home, "kafka.tools.StorageTool", "random-uuid")
    cluster_id = _run(uuid_cmd).strip().splitlines()[-1]
    scram = [
        arg
        for name, password in users.items()
        for arg in ("--add-scram", f"{devstack.SCRAM}=[name={name},password={password}]")
    ]
    fmt = ("format", "-t", cluster_id, "-c", str(props), *scram)
    _run(java_cmd(devstack, home, "kafka.tools.StorageTool", *fmt))


def _run(cmd: list[str]) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{cmd[-4:]}: exit {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout


def _not_ready(devstack: ModuleType, port: int, admin: KafkaConnection) -> str | None:
    """None when the broker is registered and its group and transaction coordinators answer
    (the devstack's own wire-protocol probe; the SASL step only on a broker with SASL)."""
    try:
        with socket.create_connection((HOST, port), timeout=3) as sock:
            sock.settimeout(3)
            ranges = devstack.kafka_api_versions(sock)
            if admin.username is not None:
                devstack.kafka_authenticate(sock, ranges, admin.username, admin.password)
            if not any(b[2] == port for b in devstack.kafka_brokers(sock, ranges)):
                return "no broker registered yet"
            for key_type in (0, 1):
                if devstack.kafka_coordinator_error(sock, ranges, "bench-probe", key_type):
                    return "coordinators not available yet"
    except (OSError, ConnectionError, struct.error) as exc:
        return repr(exc)
    return None


async def _wait_ready(
    devstack: ModuleType, process: subprocess.Popen[bytes], port: int, admin: KafkaConnection
) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    reason: str | None = "not started"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the plain Kafka broker exited ({process.returncode})")
        reason = await asyncio.to_thread(_not_ready, devstack, port, admin)
        if reason is None:
            return
        await asyncio.sleep(0.5)
    raise TimeoutError(
        f"the plain Kafka broker is not ready after {READY_TIMEOUT_S:.0f}s: {reason}"
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def plain_broker() -> contextlib.AbstractAsyncContextManager[PlainBroker]:
    """The broker without authentication."""
    return throwaway_broker()


@contextlib.asynccontextmanager
async def throwaway_broker(
    sasl: bool = False, principals: tuple[str, ...] = ()
) -> AsyncIterator[PlainBroker]:
    """Start the broker, yield it when ready; stop it and delete its directory at the end.
    ``sasl``: with the devstack's SASL/SCRAM and authorizer, an ``admin`` super user and
    ``principals``, each with a random password."""
    devstack = devstack_module()
    home = Path(tempfile.mkdtemp(prefix="slipway-bench-kafka-"))
    process: subprocess.Popen[bytes] | None = None
    users = {name: secrets.token_urlsafe(18) for name in ("admin", *principals)} if sasl else {}
    passwords = (
        {"kafka_admin": users["admin"], "kafka_controller": secrets.token_urlsafe(18)}
        if sasl
        else None
    )
    try:
        port, cport = free_port(), free_port()
        props = home / "server.properties"
        props.write_text(server_properties(devstack, home / "data", port, cport, passwords))
        props.chmod(0o600)  # with SASL it holds passwords
        log4j = devstack.kafka_log4j_properties().replace(
            str(devstack.KAFKA_LOG), str(home / "kafka.log")
        )
        (home / "log4j2.properties").write_text(log4j)
        await asyncio.to_thread(_format, devstack, home, props, users)
        with (home / "kafka.out").open("ab") as out:
            process = subprocess.Popen(  # noqa: ASYNC220 (returns at once)
                java_cmd(devstack, home, "kafka.Kafka", str(props)),
                cwd=home,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        admin = KafkaConnection(
            f"{HOST}:{port}",
            username="admin" if sasl else None,
            password=users.get("admin"),
            mechanism=devstack.SCRAM,
        )
        await _wait_ready(devstack, process, port, admin)
        others = {name: password for name, password in users.items() if name != "admin"}
        yield PlainBroker(admin, home, process.pid, others)
    finally:
        if process is not None:
            await asyncio.to_thread(_stop, process)
        shutil.rmtree(home, ignore_errors=True)
