"""``deploy/supervisor.py``: configuration, output, readiness and process handling.

The process tests run small fake services (``python -c ...``) instead of the real ones, so they
need neither the devstack nor free service ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import importlib.util
import io
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

SUPERVISOR_PATH = Path(__file__).resolve().parent.parent / "supervisor.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("slipway_deploy_supervisor", SUPERVISOR_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


sup = _load()


def alive(pid: int) -> bool:
    """Running (zombies count as dead: nobody may reap orphans in a container)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def kill_quietly(pid: int) -> None:
    if pid > 0:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


# -- configuration -----------------------------------------------------------------------------


def test_env_file_lines(tmp_path: Path) -> None:
    env_file = tmp_path / "env"
    env_file.write_text("# comment\n\nA=1\n B = two words \nC=x=y\nnot a pair\n")
    assert sup.read_env_file(env_file) == {"A": "1", "B": "two words", "C": "x=y"}
    assert sup.read_env_file(tmp_path / "missing") == {}


def test_process_environment_wins_and_logs_are_human_by_default() -> None:
    env = sup.child_environment({"A": "file", "B": "file"}, {"B": "process"})
    assert env["A"] == "file"
    assert env["B"] == "process"
    assert env["SLIPWAY_LOG_JSON"] == "false"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert sup.child_environment({}, {"SLIPWAY_LOG_JSON": "true"})["SLIPWAY_LOG_JSON"] == "true"


def test_the_devstack_cluster_goes_to_the_catalog_and_the_allow_list_with_the_switch() -> None:
    devstack = {
        "SLIPWAY_KUBERNETES_API": "https://127.0.0.1:16443",
        "SLIPWAY_KUBERNETES_KUBECONFIG": "/x/.devstack/kubernetes/slipway.kubeconfig",
    }
    on = sup.child_environment(
        devstack, {"SLIPWAY_DEVSTACK_KUBERNETES": "1", "SLIPWAY_EGRESS_ALLOW": "10.0.0.5:443"}
    )
    assert on["SLIPWAY_CATALOG_BOOTSTRAP_KUBECONFIG"] == devstack["SLIPWAY_KUBERNETES_KUBECONFIG"]
    assert on["SLIPWAY_EGRESS_ALLOW"] == "10.0.0.5:443,127.0.0.1:16443"
    again = sup.with_devstack_cluster(dict(on))
    assert again["SLIPWAY_EGRESS_ALLOW"] == "10.0.0.5:443,127.0.0.1:16443"  # not twice
    # without the switch (or without the devstack's Kubernetes) nothing changes
    for env, process in ((devstack, {}), ({}, {"SLIPWAY_DEVSTACK_KUBERNETES": "1"})):
        off = sup.child_environment(env, process)
        assert "SLIPWAY_CATALOG_BOOTSTRAP_KUBECONFIG" not in off
        assert "SLIPWAY_EGRESS_ALLOW" not in off
    # a platform engineer's own choice wins
    chosen = sup.child_environment(
        devstack,
        {"SLIPWAY_DEVSTACK_KUBERNETES": "1", "SLIPWAY_CATALOG_BOOTSTRAP_KUBECONFIG": "/mine"},
    )
    assert chosen["SLIPWAY_CATALOG_BOOTSTRAP_KUBECONFIG"] == "/mine"


def test_a_service_gets_its_own_credentials_only() -> None:
    env = {
        "SLIPWAY_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:19092",
        "SLIPWAY_PG_ADMIN_URL": "postgresql://admin:pw@h/postgres",
        "SLIPWAY_KAFKA_ADMIN_PASSWORD": "admin-pw",
        "SLIPWAY_CATALOG_KAFKA_PASSWORD": "catalog-pw",
        "SLIPWAY_CATALOG_INTERNAL_TOKEN": "catalog-token",
        "SLIPWAY_CATALOG_DATABASE_URL": "postgresql://c:pw@h/c",
        "SLIPWAY_CATALOG_SEALING_KEYS": "k1:x",  # the deployer opens what the catalog seals
        "SLIPWAY_IDENTITY_KAFKA_PASSWORD": "identity-pw",
        "SLIPWAY_IDENTITY_INTERNAL_TOKEN": "identity-token",
        "PATH": "/bin",
    }
    catalog = sup.service_environment(env, "catalog")
    assert catalog["SLIPWAY_CATALOG_KAFKA_PASSWORD"] == "catalog-pw"
    assert catalog["SLIPWAY_CATALOG_DATABASE_URL"] == env["SLIPWAY_CATALOG_DATABASE_URL"]
    gone = {"SLIPWAY_PG_ADMIN_URL", "SLIPWAY_KAFKA_ADMIN_PASSWORD"}
    gone |= {"SLIPWAY_IDENTITY_KAFKA_PASSWORD", "SLIPWAY_IDENTITY_INTERNAL_TOKEN"}
    assert not gone & set(catalog)
    deployer = sup.service_environment(env, "deployer")
    assert deployer["SLIPWAY_CATALOG_SEALING_KEYS"] == "k1:x"
    assert "SLIPWAY_CATALOG_KAFKA_PASSWORD" not in deployer
    # not the env file either: it holds every credential
    assert deployer["SLIPWAY_DEVSTACK_ENV"] == os.devnull
    assert deployer["SLIPWAY_KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:19092"


def test_registry_passwords_reach_their_own_service_only() -> None:
    env = {
        "SLIPWAY_REGISTRY": "127.0.0.1:15000",
        "SLIPWAY_REGISTRY_USERNAME": "admin",
        "SLIPWAY_REGISTRY_PASSWORD": "admin-pw",
        "SLIPWAY_BUILDER_REGISTRY_USERNAME": "builder",
        "SLIPWAY_BUILDER_REGISTRY_PASSWORD": "builder-pw",
        "SLIPWAY_DEPLOYER_REGISTRY_USERNAME": "deployer",
        "SLIPWAY_DEPLOYER_REGISTRY_PASSWORD": "deployer-pw",
    }
    builder = sup.service_environment(env, "builder")
    assert builder["SLIPWAY_BUILDER_REGISTRY_PASSWORD"] == "builder-pw"
    assert builder["SLIPWAY_REGISTRY"] == "127.0.0.1:15000"
    assert not {"SLIPWAY_REGISTRY_PASSWORD", "SLIPWAY_DEPLOYER_REGISTRY_PASSWORD"} & set(builder)
    deployer = sup.service_environment(env, "deployer")
    assert deployer["SLIPWAY_DEPLOYER_REGISTRY_PASSWORD"] == "deployer-pw"
    assert "SLIPWAY_BUILDER_REGISTRY_PASSWORD" not in deployer
    assert not any("REGISTRY_PASSWORD" in k for k in sup.service_environment(env, "catalog"))


def test_service_address_from_environment() -> None:
    assert sup.service_from_env("gateway", {}).base_url == "http://127.0.0.1:8080"
    env = {"SLIPWAY_GATEWAY_HTTP_PORT": "9090", "SLIPWAY_GATEWAY_HTTP_HOST": "0.0.0.0"}
    assert sup.service_from_env("gateway", env).base_url == "http://127.0.0.1:9090"
    assert sup.service_from_env("logs", {}).port == 8086


def test_only_keeps_the_start_order_and_rejects_unknown_names() -> None:
    assert sup.parse_args(["--only", "gateway, identity"]).only == ["identity", "gateway"]
    assert sup.parse_args([]).only == list(sup.SERVICES)
    with pytest.raises(SystemExit):
        sup.parse_args(["--only", "identity,nope"])


def test_busy_port_is_detected() -> None:
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        busy = sup.Service("identity", "127.0.0.1", port)
        assert sup.ports_in_use([busy]) == [busy]
    assert sup.ports_in_use([busy]) == []


# -- output ------------------------------------------------------------------------------------


def test_prefix_is_fixed_width_and_plain_without_a_tty() -> None:
    out = io.StringIO()
    printer = sup.Printer(["identity", "scheduler"], out, color=False)
    printer.line("identity", "hello")
    printer.say("hi")
    assert out.getvalue().splitlines() == ["identity   | hello", "supervisor | hi"]


def test_prefix_is_colored_on_a_tty() -> None:
    printer = sup.Printer(["identity", "catalog"], io.StringIO(), color=True)
    assert printer.prefix("catalog") == "\x1b[32mcatalog    |\x1b[0m"
    assert not sup.use_color(io.StringIO(), {})


def test_exit_descriptions_and_backoff() -> None:
    assert sup.describe_exit(3) == "exited with code 3"
    assert sup.describe_exit(-9) == "killed by SIGKILL"
    assert [sup.backoff(n) for n in (1, 2, 3, 10)] == [1.0, 2.0, 4.0, sup.BACKOFF_MAX_S]


def test_banner_points_at_the_gateway() -> None:
    text = "\n".join(sup.banner([sup.service_from_env(n, {}) for n in sup.SERVICES]))
    assert "http://127.0.0.1:8080/docs" in text
    assert "curl -X POST http://127.0.0.1:8080/api/v1/auth/signup" in text
    subset = "\n".join(sup.banner([sup.service_from_env("identity", {})]))
    assert "http://127.0.0.1:8081" in subset


def test_failing_checks_are_named() -> None:
    body = b'{"checks": {"kafka": {"ok": true}, "database": {"ok": false}}}'
    assert sup.failing_checks(body) == " (failing: database)"
    assert sup.failing_checks(b"not json") == ""


# -- readiness ---------------------------------------------------------------------------------


class _Readyz(http.server.BaseHTTPRequestHandler):
    status = 503

    def do_GET(self) -> None:
        body = b'{"checks": {"database": {"ok": false}}}'
        self.send_response(type(self).status)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def readyz_server() -> Iterator[tuple[sup.Service, type[_Readyz]]]:
    handler = type("Handler", (_Readyz,), {"status": 503})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield sup.Service("identity", "127.0.0.1", server.server_address[1]), handler
    finally:
        server.shutdown()
        server.server_close()


def test_probe_reports_why(readyz_server: tuple[sup.Service, type[_Readyz]]) -> None:
    service, handler = readyz_server
    assert sup.probe(f"{service.base_url}/readyz") == (False, "HTTP 503 (failing: database)")
    handler.status = 200
    assert sup.probe(f"{service.base_url}/readyz") == (True, "HTTP 200")
    closed = sup.Service("x", "127.0.0.1", 1)
    assert sup.probe(f"{closed.base_url}/readyz")[0] is False


async def test_waits_until_ready(
    readyz_server: tuple[sup.Service, type[_Readyz]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sup, "POLL_INTERVAL_S", 0.05)
    monkeypatch.setattr(sup, "WAITING_REPORT_EVERY_S", 0.0)
    service, handler = readyz_server
    out = io.StringIO()
    printer = sup.Printer(["identity"], out, color=False)
    waiting = asyncio.create_task(
        sup.wait_until_ready([service], printer, asyncio.Event(), timeout_s=0.2)
    )
    await asyncio.sleep(0.5)
    assert not waiting.done()
    handler.status = 200
    assert await asyncio.wait_for(waiting, 5) is True
    assert "waiting for /readyz: identity" in out.getvalue()
    assert "identity: HTTP 503 (failing: database)" in out.getvalue()


# -- processes ---------------------------------------------------------------------------------

SERVE = "import time; print('up', flush=True); time.sleep(300)"
IGNORE_TERM = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('up', flush=True); time.sleep(300)"
)
# Leaves a grandchild that ignores SIGTERM in its process group, then waits.
WITH_GRANDCHILD = (
    "import subprocess, sys, time\n"
    f"child = subprocess.Popen([sys.executable, '-c', {IGNORE_TERM!r}])\n"
    "print('grandchild', child.pid, flush=True)\n"
    "time.sleep(300)\n"
)


def make_supervisor(script: str, out: io.StringIO) -> sup.Supervisor:
    service = sup.Service("identity", "127.0.0.1", 1)
    printer = sup.Printer(["identity"], out, color=False)
    return sup.Supervisor(
        [service], dict(os.environ), printer, command=lambda _: [sys.executable, "-c", script]
    )


async def until(predicate: object, timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_stop_terminates_children_and_exits_zero() -> None:
    out = io.StringIO()
    supervisor = make_supervisor(SERVE, out)
    running = asyncio.create_task(supervisor.run(wait=False, timeout_s=1))
    await until(lambda: "identity   | up" in out.getvalue())
    supervisor.request_stop("SIGINT")
    assert await asyncio.wait_for(running, 5) == 0
    assert "supervisor | stopped" in out.getvalue()


async def test_child_ignoring_sigterm_is_killed_after_the_grace_period(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sup, "GRACE_S", 0.5)
    out = io.StringIO()
    supervisor = make_supervisor(IGNORE_TERM, out)
    running = asyncio.create_task(supervisor.run(wait=False, timeout_s=1))
    await until(lambda: "identity   | up" in out.getvalue())
    supervisor.request_stop("SIGTERM")
    assert await asyncio.wait_for(running, 5) == 0
    assert "identity did not stop in time: SIGKILL" in out.getvalue()


async def test_nothing_is_left_in_the_process_group() -> None:
    out = io.StringIO()
    supervisor = make_supervisor(WITH_GRANDCHILD, out)
    running = asyncio.create_task(supervisor.run(wait=False, timeout_s=1))
    await until(lambda: "grandchild" in out.getvalue())
    grandchild = int(re.search(r"grandchild (\d+)", out.getvalue()).group(1))  # type: ignore[union-attr]
    try:
        assert alive(grandchild)
        supervisor.request_stop("SIGINT")
        assert await asyncio.wait_for(running, 15) == 0
        await until(lambda: not alive(grandchild), 2)
    finally:
        kill_quietly(grandchild)


async def test_dying_child_is_restarted_then_given_up_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sup, "BACKOFF_BASE_S", 0.01)
    monkeypatch.setattr(sup, "MAX_RESTARTS", 2)
    out = io.StringIO()
    supervisor = make_supervisor("print('boom', flush=True); raise SystemExit(3)", out)
    assert await asyncio.wait_for(supervisor.run(wait=False, timeout_s=1), 10) == 1
    text = out.getvalue()
    assert text.count("identity   | boom") == 3
    assert "identity exited with code 3; restarting in 0 s (1/2)" in text
    assert "identity exited with code 3; it died 3 times in a row, giving up" in text
    assert "stopped (identity failed)" in text


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_children_die_with_a_killed_supervisor() -> None:
    """SIGKILL on the supervisor itself: the kernel sends its children SIGTERM."""
    parent_script = (
        "import subprocess, sys\n"
        f"sys.path.insert(0, {str(SUPERVISOR_PATH.parent)!r})\n"
        "import supervisor\n"
        f"child = subprocess.Popen(supervisor.python_command(['-c', {SERVE!r}]), "
        "start_new_session=True, stdout=subprocess.PIPE, text=True)\n"
        "child.stdout.readline()\n"
        "print(child.pid, flush=True)\n"
        "child.wait()\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", parent_script], stdout=subprocess.PIPE)
    child = 0
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert alive(child)
        parent.kill()
        parent.wait(5)
        for _ in range(100):
            if not alive(child):
                break
            threading.Event().wait(0.05)
        assert not alive(child)
    finally:
        parent.kill()
        parent.wait(5)
        kill_quietly(child)


async def test_a_child_that_cannot_start_stops_everything() -> None:
    out = io.StringIO()
    service = sup.Service("identity", "127.0.0.1", 1)
    printer = sup.Printer(["identity"], out, color=False)
    supervisor = sup.Supervisor([service], {}, printer, command=lambda _: ["/nonexistent/python"])
    assert await asyncio.wait_for(supervisor.run(wait=False, timeout_s=1), 5) == 1
    assert "supervising identity failed: FileNotFoundError" in out.getvalue()
