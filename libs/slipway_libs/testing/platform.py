"""Real service processes for cross-service tests: ``python -m slipway_<name> run`` on free ports.

Each platform gets fresh databases (migrated by the service's own ``migrate`` command), its own
topic prefix (so it sees only its own events on the shared broker), fresh internal tokens (one
per service; ``env["SLIPWAY_INTERNAL_TOKEN"]`` is the gateway's, for tests that call internal APIs
directly) and sealing keys. On a cluster that authenticates, each service connects as its own
Kafka principal (the devstack's), with ACLs granted for the platform's prefix only (and revoked
by ``revoke_acls``). Output goes to a log file per service, whose tail is shown when a start fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from aiokafka.admin import AIOKafkaAdminClient

from slipway_libs.actor import token_digest
from slipway_libs.bus import delete_topics
from slipway_libs.crypto import new_key_setting
from slipway_libs.kafka_access import ACCESS, grant, revoke
from slipway_libs.lifetime import asking_to_die_with
from slipway_libs.settings import KafkaConnection

WITH_DATABASE = ("identity", "catalog", "builder", "deployer", "scheduler", "logs")


class PortTaken(RuntimeError):
    """Another process holds the port a service was started on: a port found free is free only
    until someone binds it, and parallel test workers (or their outgoing connections) do."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port nothing listens on while the block runs: bound here and never listened
    on, so a connection to it is refused, and no other process can take it meanwhile. (A port
    ``free_port`` found free was later bound by a platform's own service, which answered the
    "unreachable" cluster's ``/version`` with 404: a clean-clone run failed on it.)"""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@dataclass
class ServiceProcess:
    name: str
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    instance: str = ""  # the name it answers /readyz with: this process, not another's

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Platform:
    kafka: KafkaConnection  # the admin principal's (tests read and write any topic with it)
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    prefix: str = field(default_factory=lambda: f"t{secrets.token_hex(4)}.")

    def url(self, name: str) -> str:
        return self.services[name].url

    def start(self, name: str) -> None:
        service = self.services[name]
        log = service.log_path.open("ab")
        service.instance = secrets.token_hex(8)
        env = self.env | {f"SLIPWAY_{name.upper()}_INSTANCE_ID": service.instance}
        service.process = subprocess.Popen(
            [sys.executable, "-m", f"slipway_{name}", "run"],
            env=asking_to_die_with(env),  # a killed test run leaves no service behind
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        process = self.services[name].process
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, sig)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def stop_all(self) -> None:
        for name in reversed(list(self.services)):
            self.stop(name)
        state = self.env.get("SLIPWAY_DEPLOYER_STATE_DIR")
        if state:
            reap(state)

    async def wait_ready(self, name: str, timeout_s: float = 180) -> None:
        """Until ``/readyz`` answers 200 with the name the process was started with.
        Generous: a crowded machine (load far above its cores) took over 60 s to start a
        service; an exited process still fails at once. ``PortTaken`` when another process
        holds the port (its answer, or ours failing to bind): a test must never talk to another
        platform's service (one did: the deploys of a whole module went to a stranger)."""
        service = self.services[name]
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(timeout=5) as client:
            while time.monotonic() < deadline:
                if service.process is not None and service.process.poll() is not None:
                    if "address already in use" in service.tail():
                        raise PortTaken(f"{name} could not bind {service.port}")
                    raise RuntimeError(f"{name} exited:\n{service.tail()}")
                try:
                    answer = await client.get(f"{service.url}/readyz")
                except httpx.HTTPError:
                    answer = None
                if answer is not None and answer.status_code == 200:
                    if _instance(answer) != service.instance:
                        raise PortTaken(f"another process answers on {name}'s {service.port}")
                    return
                await asyncio.sleep(0.2)
        raise TimeoutError(f"{name} not ready after {timeout_s}s:\n{service.tail()}")


def _instance(answer: httpx.Response) -> str | None:
    try:
        body = answer.json()
    except ValueError:
        return None
    return body.get("instance") if isinstance(body, dict) else None


async def revoke_acls(platform: Platform) -> None:
    """Remove the ACLs ``start_platform`` granted for the platform's prefix."""
    if platform.kafka.username is not None:
        await revoke(platform.kafka, platform.prefix)


async def delete_platform_topics(platform: Platform) -> None:
    """Delete every topic under the platform's prefix (its own and its dead-letter topics): a
    whole run starts a platform per test module, and a broker keeping all their partitions ran
    out of heap on a long-lived devstack."""
    admin = AIOKafkaAdminClient(**platform.kafka.options(), client_id="slipway-test-topics")
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(platform.prefix)]
    finally:
        await admin.close()
    if names:
        await delete_topics(platform.kafka, names)


def reap(marker: str, grace_s: float = 3.0) -> None:
    """Stop what a test deployer left running (services outlive the deployer by design): every
    process whose command line names its state dir (``buildah run``, database servers)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = _naming(marker)
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace_s
        while pids and _naming(marker) and time.monotonic() < deadline:
            time.sleep(0.1)


def _naming(marker: str) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def platform_env(
    kafka: KafkaConnection,
    databases: dict[str, str],
    ports: dict[str, int],
    prefix: str,
    principals: dict[str, str] | None = None,
) -> dict[str, str]:
    """``principals``: service -> Kafka password (the devstack's ``SLIPWAY_<S>_KAFKA_PASSWORD``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLIPWAY_")}
    env.update(
        {
            "SLIPWAY_DEVSTACK_ENV": os.devnull,
            "SLIPWAY_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
            "SLIPWAY_KAFKA_SASL_MECHANISM": kafka.mechanism,
            "SLIPWAY_TOPIC_PREFIX": prefix,
            "SLIPWAY_LOG_LEVEL": "WARNING",
            "SLIPWAY_IDENTITY_SEALING_KEYS": new_key_setting("t1"),
            "SLIPWAY_CATALOG_SEALING_KEYS": new_key_setting("t1"),
            "SLIPWAY_SCHEDULER_SEALING_KEYS": new_key_setting("t1"),
            # fast password hashing in tests (the production default is OWASP's minimum)
            "SLIPWAY_IDENTITY_ARGON2_MEMORY_KIB": "1024",
            "SLIPWAY_IDENTITY_ARGON2_TIME_COST": "1",
            # the scheduler polls the tests' local repositories too (under
            # SLIPWAY_GIT_LOCAL_ROOTS): no second poll in a test's lifetime, so that a commit a
            # test makes is deployed when the test says so; polling's own tests set theirs
            "SLIPWAY_SCHEDULER_GIT_POLL_INTERVAL_S": "3600",
        }
    )
    # the deployer's local runtime: a state dir of its own (one live runtime per dir)
    state = tempfile.mkdtemp(prefix="slipway-deployer-")
    # databases run as the postgres user, which must reach their data
    os.chmod(state, 0o711)  # noqa: S103
    env["SLIPWAY_DEPLOYER_STATE_DIR"] = state
    env["SLIPWAY_BUILDER_BUILD_ID_BASE"] = str(_build_id_base())
    env["SLIPWAY_GATEWAY_SERVICES"] = ",".join(n for n in ports if n != "gateway")
    env.update(internal_tokens(list(ACCESS)))
    for name, password in (principals or {}).items():
        env[f"SLIPWAY_{name.upper()}_KAFKA_USERNAME"] = name
        env[f"SLIPWAY_{name.upper()}_KAFKA_PASSWORD"] = password
    for name, dsn in databases.items():
        env[f"SLIPWAY_{name.upper()}_DATABASE_URL"] = dsn
    return env | port_env(ports)


def port_env(ports: dict[str, int]) -> dict[str, str]:
    """Where each service listens, and where the gateway finds it."""
    env = {}
    for name, port in ports.items():
        env[f"SLIPWAY_{name.upper()}_HTTP_PORT"] = str(port)
        env[f"SLIPWAY_GATEWAY_{name.upper()}_URL"] = f"http://127.0.0.1:{port}"
    return env


_platforms_started = itertools.count()


def _build_id_base() -> int:
    """Host ids of this platform's build steps, apart from every other stack's on this host.

    A builder kills the processes left in its id range once it has no build running, and it
    can only know its own builds: platforms of parallel test workers (and a ``make up`` stack,
    on the production default 700,000,000) sharing one range killed each other's RUN steps.
    A small bounded set per test worker, so that the builders' id-mapped stores do not pile up.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    slot = (int(worker) if worker.isdigit() else 0) * 4 + next(_platforms_started) % 4
    return 710_000_000 + slot * 65_536


def internal_tokens(services: list[str]) -> dict[str, str]:
    """A token per service, the gateway's accepted by every service's internal API (the only
    caller today); ``SLIPWAY_INTERNAL_TOKEN`` is the gateway's too, for tests."""
    tokens = {name: secrets.token_urlsafe(24) for name in services}
    env = {f"SLIPWAY_{name.upper()}_INTERNAL_TOKEN": token for name, token in tokens.items()}
    callers = f"gateway:{token_digest(tokens['gateway'])}"
    env.update({f"SLIPWAY_{n.upper()}_INTERNAL_CALLERS": callers for n in services})
    env["SLIPWAY_INTERNAL_TOKEN"] = tokens["gateway"]
    return env


def migrate(name: str, env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", f"slipway_{name}", "migrate"],
        env=env,
        capture_output=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{name} migrate failed:\n{result.stderr.decode(errors='replace')}")


async def start_platform(
    kafka: KafkaConnection,
    databases: dict[str, str],
    names: list[str],
    extra_env: dict[str, str] | None = None,
    principals: dict[str, str] | None = None,
) -> Platform:
    platform = Platform(kafka=kafka)
    logs = Path(tempfile.mkdtemp(prefix="slipway-platform-"))
    if kafka.username is not None:
        await grant(kafka, platform.prefix)
    ports = {name: free_port() for name in names}
    # sealing keys, tokens and the state dir once: a service of a first attempt may have sealed
    # its signing key with them; only the ports change when they were taken
    base = platform_env(kafka, databases, ports, platform.prefix, principals)
    for attempt in range(_PORT_ATTEMPTS):
        if attempt:
            ports = {name: free_port() for name in names}
        platform.env = base | port_env(ports) | (extra_env or {})
        for name in names:
            log = logs / (f"{name}.log" if not attempt else f"{name}.{attempt}.log")
            platform.services[name] = ServiceProcess(name, ports[name], log)
            if name in WITH_DATABASE and attempt == 0:
                await asyncio.to_thread(migrate, name, platform.env)
        try:
            for name in names:
                platform.start(name)
            for name in names:
                await platform.wait_ready(name)
        except PortTaken:
            platform.stop_all()  # again on other ports, on the same databases and topics
            continue
        except BaseException:
            platform.stop_all()
            raise
        return platform
    raise PortTaken(f"the ports of {names} were taken {_PORT_ATTEMPTS} times in a row")


_PORT_ATTEMPTS = 3
