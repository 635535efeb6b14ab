"""A test platform talks to the processes it started, never to another one that took a port.

A clean-clone ``make test`` beside other stacks once saw a whole module's deploys answered
``404 Not Found``: a port chosen free had been bound by another platform's service before the
deployer could bind it, and that service answered ``/readyz`` with 200.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import httpx
import pytest

from slipway_libs.testing import platform as platform_module
from slipway_libs.testing.platform import Platform, PortTaken, ServiceProcess
from slipway_libs.testing.plugin import PlatformFactory


class _Stranger(BaseHTTPRequestHandler):
    """Another stack's service: ready, under another name (or none)."""

    instance = "someone-else"

    def do_GET(self) -> None:
        body = json.dumps({"status": "ready", "instance": self.instance}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def stranger() -> Iterator[int]:
    server = HTTPServer(("127.0.0.1", 0), _Stranger)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


async def test_a_stranger_answering_on_the_port_is_not_taken_for_the_service(
    stranger: int, tmp_path: Path
) -> None:
    service = ServiceProcess("deployer", stranger, tmp_path / "deployer.log", instance="ours")
    platform = Platform(kafka=None, services={"deployer": service})  # type: ignore[arg-type]
    with pytest.raises(PortTaken, match="another process answers"):
        await platform.wait_ready("deployer", timeout_s=10)
    # the same answer with the name the process was started with is ready
    service.instance = _Stranger.instance
    await platform.wait_ready("deployer", timeout_s=10)


async def test_the_platform_starts_again_on_other_ports_when_one_was_taken(
    stranger: int, platform_factory: PlatformFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first port handed out is the stranger's: the platform notices, starts again on
    fresh ports and answers with its own process behind every URL."""
    real = platform_module.free_port
    handed: list[int] = []

    def first_one_taken() -> int:
        port = stranger if not handed else real()
        handed.append(port)
        return port

    monkeypatch.setattr(platform_module, "free_port", first_one_taken)
    platform = await platform_factory(["logs"])
    service = platform.services["logs"]
    assert handed[0] == stranger and service.port != stranger
    assert len(handed) == 2  # one attempt on the taken port, one on a fresh one
    async with httpx.AsyncClient() as client:
        ready = (await client.get(f"{platform.url('logs')}/readyz")).json()
    assert ready["instance"] == service.instance and ready["service"] == "logs"


def test_a_closed_port_stays_closed_while_held() -> None:
    """``closed_port``: refused to every client, and no server can take it meanwhile (a
    cluster test's "unreachable" port, found free and let go, was then bound by a platform's
    own service, which answered its /version with 404)."""
    with platform_module.closed_port() as port:
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/version", timeout=5)
        with pytest.raises(OSError), HTTPServer(("127.0.0.1", port), _Stranger):
            pass  # pragma: no cover - the bind above fails
