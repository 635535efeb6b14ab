"""Run the whole Slipway platform in the foreground: what ``make up`` starts after migrating.

Behaviour:

- Children's environment: this process's environment over ``.devstack/env`` (KEY=VALUE lines;
  the process environment wins), with ``SLIPWAY_LOG_JSON=false`` unless set, so the output is
  meant for people.
- Starts ``python -m slipway_<service> run`` (same interpreter) for every service, or only those
  named by ``--only identity,catalog``; each child in its own process group (and, on Linux, asked
  to die with the supervisor should the supervisor itself be killed).
- Every output line is prefixed with a fixed-width service name, colored when stdout is a TTY
  (and ``NO_COLOR`` is unset).
- Refuses to start when a service's HTTP port is already taken (another ``make up``?).
- Polls every service's ``/readyz`` until all answer 200, showing which are still waiting, then
  prints the gateway URL, the API docs URL and how to create a first account. After
  ``--timeout`` seconds (90) it says what is still not ready and keeps waiting. ``--no-wait``
  skips all of this.
- A child that exits on its own is reported with its exit code and restarted after a growing
  delay (1 s, 2 s, 4 s, ...). A child that dies more than ``MAX_RESTARTS`` times in a row, each
  within ``STABLE_AFTER_S`` of starting, stops the whole platform (exit status 1).
- Ctrl-C, SIGTERM or SIGHUP: SIGTERM to every child's process group, up to ``GRACE_S`` seconds
  to exit, then SIGKILL; a second Ctrl-C kills at once. Exit status 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
ENV_FILE = ROOT / ".devstack" / "env"

# Start order: the gateway last, since its readiness is everyone else's.
DEFAULT_PORTS = {
    "identity": 8081,
    "catalog": 8082,
    "builder": 8083,
    "deployer": 8084,
    "scheduler": 8085,
    "logs": 8086,
    "gateway": 8080,
}
SERVICES = tuple(DEFAULT_PORTS)

GRACE_S = 10.0
MAX_RESTARTS = 5
STABLE_AFTER_S = 60.0
BACKOFF_BASE_S = 1.0
BACKOFF_MAX_S = 30.0
READY_TIMEOUT_S = 90.0
POLL_INTERVAL_S = 1.0
WAITING_REPORT_EVERY_S = 5.0
LINE_LIMIT = 1024 * 1024

SELF = "supervisor"
COLORS = ("36", "32", "33", "35", "34", "96", "92", "93")  # ANSI foreground codes
SIGNUP_BODY = '{"email":"you@example.com","password":"a long passphrase","name":"You"}'

# Run as ``python -c DIE_WITH_PARENT <parent pid> <python args>``: on Linux, ask the kernel to
# SIGTERM this process when the supervisor dies, then become ``python <python args>``.
DIE_WITH_PARENT = (
    "import ctypes, os, signal, sys\n"
    "ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    sys.exit(0)\n"
    "os.execv(sys.executable, [sys.executable, *sys.argv[2:]])\n"
)


@dataclass(frozen=True)
class Service:
    name: str
    host: str
    port: int

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"


# -- configuration -----------------------------------------------------------------------------


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines; blank lines and ``#`` comments ignored, no shell quoting."""
    if not path.exists():
        return {}
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def child_environment(
    file_values: Mapping[str, str], process_env: Mapping[str, str]
) -> dict[str, str]:
    env = {**file_values, **process_env}
    env.setdefault("SLIPWAY_LOG_JSON", "false")
    env["PYTHONUNBUFFERED"] = "1"
    return with_devstack_cluster(env)


def with_devstack_cluster(env: dict[str, str]) -> dict[str, str]:
    """With the devstack's Kubernetes (``SLIPWAY_DEVSTACK_KUBERNETES=1``): the first
    organization gets it as a self_managed cluster (the catalog registers it from the
    deployer account's kubeconfig), and its loopback API server joins the egress allow-list,
    which refuses loopback targets otherwise (the catalog's check, the deployer's runtime)."""
    kubeconfig, api = env.get("SLIPWAY_KUBERNETES_KUBECONFIG"), env.get("SLIPWAY_KUBERNETES_API")
    if env.get("SLIPWAY_DEVSTACK_KUBERNETES") != "1" or not (kubeconfig and api):
        return env
    env.setdefault("SLIPWAY_CATALOG_BOOTSTRAP_KUBECONFIG", kubeconfig)
    target = urlsplit(api).netloc
    allowed = [t for t in env.get("SLIPWAY_EGRESS_ALLOW", "").split(",") if t]
    if target not in allowed:
        env["SLIPWAY_EGRESS_ALLOW"] = ",".join([*allowed, target])
    return env


# credentials of one service (or of the devstack's admin) that no other service's process gets
_OWN_SECRETS = ("_KAFKA_PASSWORD", "_INTERNAL_TOKEN", "_DATABASE_URL", "_REGISTRY_PASSWORD")
_ADMIN_SECRETS = (
    "SLIPWAY_KAFKA_ADMIN_PASSWORD",
    "SLIPWAY_PG_ADMIN_URL",
    "SLIPWAY_REGISTRY_PASSWORD",
)


def service_environment(env: Mapping[str, str], name: str) -> dict[str, str]:
    """One service's environment: its own credentials, not the other services' nor the admin's
    (and not the env file, which holds them all: ``env`` already has what it needs of it)."""
    own = f"SLIPWAY_{name.upper()}_"
    kept = {
        key: value
        for key, value in env.items()
        if key not in _ADMIN_SECRETS
        and (key.startswith(own) or not (key.startswith("SLIPWAY_") and key.endswith(_OWN_SECRETS)))
    }
    kept["SLIPWAY_DEVSTACK_ENV"] = os.devnull
    return kept


def service_from_env(name: str, env: Mapping[str, str]) -> Service:
    prefix = f"SLIPWAY_{name.upper()}_HTTP_"
    host = env.get(prefix + "HOST", "127.0.0.1")
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    return Service(name, host, int(env.get(prefix + "PORT", DEFAULT_PORTS[name])))


def parse_only(value: str) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in DEFAULT_PORTS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown service(s) {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(SERVICES)}"
        )
    return [s for s in SERVICES if s in names]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only",
        type=parse_only,
        default=list(SERVICES),
        metavar="SVC,SVC",
        help="run only these services (default: all)",
    )
    parser.add_argument(
        "--no-wait", action="store_true", help="do not wait for /readyz nor print the banner"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=READY_TIMEOUT_S,
        help="seconds before reporting services that are still not ready",
    )
    return parser.parse_args(argv)


def ports_in_use(services: Sequence[Service]) -> list[Service]:
    taken = []
    for service in services:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            if sock.connect_ex((service.host, service.port)) == 0:
                taken.append(service)
    return taken


def python_command(args: Sequence[str]) -> list[str]:
    """``python <args>`` that, on Linux, dies with this process even if it is SIGKILLed."""
    if sys.platform.startswith("linux"):
        return [sys.executable, "-c", DIE_WITH_PARENT, str(os.getpid()), *args]
    return [sys.executable, *args]


def service_command(name: str) -> list[str]:
    return python_command(["-m", f"slipway_{name}", "run"])


# -- output ------------------------------------------------------------------------------------


class Printer:
    """Writes ``name | line`` with a fixed-width, optionally colored, name."""

    def __init__(self, names: Sequence[str], out: TextIO, color: bool) -> None:
        self.out = out
        self.width = max(len(n) for n in (*names, SELF))
        self.colors = {n: COLORS[i % len(COLORS)] for i, n in enumerate(names)} if color else {}
        if color:
            self.colors[SELF] = "1"

    def prefix(self, name: str) -> str:
        label = f"{name:<{self.width}} |"
        code = self.colors.get(name)
        return f"\x1b[{code}m{label}\x1b[0m" if code else label

    def line(self, name: str, text: str) -> None:
        with contextlib.suppress(OSError, ValueError):  # a closed stdout must not stop anything
            self.out.write(f"{self.prefix(name)} {text}\n")
            self.out.flush()

    def say(self, text: str) -> None:
        self.line(SELF, text)


def use_color(stream: TextIO, env: Mapping[str, str]) -> bool:
    return stream.isatty() and not env.get("NO_COLOR")


async def open_reader(read_fd: int) -> tuple[asyncio.StreamReader, asyncio.BaseTransport]:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=LINE_LIMIT)
    pipe = os.fdopen(read_fd, "rb", buffering=0)
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
    return reader, transport


async def pump(
    name: str, reader: asyncio.StreamReader, transport: asyncio.BaseTransport, printer: Printer
) -> None:
    """Print the lines of one child until end of file; close the pipe however it ends."""
    try:
        while raw := await readline(reader, name, printer):
            printer.line(name, raw.decode(errors="replace").rstrip("\r\n"))
    finally:
        transport.close()


async def readline(reader: asyncio.StreamReader, name: str, printer: Printer) -> bytes:
    while True:
        try:
            return await reader.readline()
        except ValueError:  # longer than LINE_LIMIT: the reader dropped it
            printer.line(name, f"[a line longer than {LINE_LIMIT} bytes was dropped]")


def describe_exit(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
        return f"killed by signal {-code}"
    return f"exited with code {code}"


def banner(services: Sequence[Service]) -> list[str]:
    by_name = {s.name: s for s in services}
    gateway = by_name.get("gateway")
    lines = ["", "=" * 72, "  Slipway is up."]
    if gateway is None:
        lines += [f"  {s.name:<10} {s.base_url}" for s in services]
    else:
        url = gateway.base_url
        lines += [
            f"  gateway    {url}",
            f"  API docs   {url}/docs",
            "",
            "  First time? Create your account:",
            f"    curl -X POST {url}/api/v1/auth/signup \\",
            "      -H 'content-type: application/json' \\",
            f"      -d '{SIGNUP_BODY}'",
            f"  then log in with POST {url}/api/v1/auth/login (or the `slipway` CLI).",
        ]
    lines += ["", "  Ctrl-C stops everything.", "=" * 72, ""]
    return lines


# -- readiness ---------------------------------------------------------------------------------


def probe(url: str, timeout_s: float = 2.0) -> tuple[bool, str]:
    """(ready?, why not): GET ``url``, 200 means ready."""
    try:
        # S310: the URL is always http://host:port/readyz, built from our own settings.
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310
            return response.status == 200, f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return False, f"HTTP {exc.code}{failing_checks(exc.read())}"
    except urllib.error.URLError as exc:
        return False, str(exc.reason)
    except (OSError, HTTPException) as exc:
        return False, f"{type(exc).__name__}: {exc}"


def failing_checks(body: bytes) -> str:
    with contextlib.suppress(ValueError, AttributeError, TypeError):
        checks = json.loads(body).get("checks", {})
        failing = sorted(name for name, result in checks.items() if not result.get("ok"))
        if failing:
            return f" (failing: {', '.join(failing)})"
    return ""


async def wait_until_ready(
    services: Sequence[Service], printer: Printer, stop: asyncio.Event, timeout_s: float
) -> bool:
    """Poll until every ``/readyz`` is 200; False if stopped first."""
    started = last_report = time.monotonic()
    warned = False
    pending = {s.name: "not started" for s in services}
    while pending and not stop.is_set():
        waiting = [s for s in services if s.name in pending]
        probes = (asyncio.to_thread(probe, f"{s.base_url}/readyz") for s in waiting)
        results = await asyncio.gather(*probes)
        for service, (ok, why) in zip(waiting, results, strict=True):
            if ok:
                del pending[service.name]
            else:
                pending[service.name] = why
        now = time.monotonic()
        if pending and not warned and now - started > timeout_s:
            warned = True
            printer.say(f"still not ready after {timeout_s:.0f} s (waiting on):")
            for name, why in pending.items():
                printer.say(f"  {name}: {why}")
        elif pending and now - last_report > WAITING_REPORT_EVERY_S * (6 if warned else 1):
            last_report = now
            printer.say(f"waiting for /readyz: {', '.join(pending)}")
        if pending:
            await sleep_unless(stop, POLL_INTERVAL_S)
    return not pending


async def sleep_unless(event: asyncio.Event, seconds: float) -> bool:
    """Sleep; True (early) if ``event`` gets set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
    return event.is_set()


# -- processes ---------------------------------------------------------------------------------


def signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def backoff(failures: int) -> float:
    return float(min(BACKOFF_BASE_S * 2 ** max(failures - 1, 0), BACKOFF_MAX_S))


class Supervisor:
    def __init__(
        self,
        services: Sequence[Service],
        env: Mapping[str, str],
        printer: Printer,
        command: Callable[[str], list[str]] = service_command,
    ) -> None:
        self.services = services
        self.env = dict(env)
        self.printer = printer
        self.command = command
        self.stop = asyncio.Event()  # shut everything down
        self.force = asyncio.Event()  # ... and do not wait for a graceful exit
        self.failed: str | None = None

    def request_stop(self, reason: str) -> None:
        if self.stop.is_set():
            self.printer.say(f"{reason} again: killing everything now")
            self.force.set()
            return
        self.printer.say(f"{reason}: stopping every service (Ctrl-C again to kill at once)")
        self.stop.set()

    async def spawn(
        self, service: Service
    ) -> tuple[asyncio.subprocess.Process, asyncio.Task[None]]:
        """Start one child, its output going to a pipe of ours (not asyncio's: waiting for the
        child must not wait for whatever else it left holding its stdout)."""
        read_fd, write_fd = os.pipe()
        try:
            process = await asyncio.create_subprocess_exec(
                *self.command(service.name),
                cwd=ROOT,
                env=service_environment(self.env, service.name),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=write_fd,
                stderr=write_fd,
                start_new_session=True,
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        reader, transport = await open_reader(read_fd)
        output = asyncio.create_task(pump(service.name, reader, transport, self.printer))
        return process, output

    async def exited_or_stopped(self, process: asyncio.subprocess.Process) -> int | None:
        """The exit code, or None if a stop was requested first (the child still runs)."""
        exited = asyncio.create_task(process.wait())
        stopping = asyncio.create_task(self.stop.wait())
        await asyncio.wait({exited, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if exited.done():
            return exited.result()
        exited.cancel()
        return None

    async def terminate(self, service: Service, process: asyncio.subprocess.Process) -> None:
        signal_group(process.pid, signal.SIGTERM)
        exited = asyncio.create_task(process.wait())
        forced = asyncio.create_task(self.force.wait())
        await asyncio.wait({exited, forced}, timeout=GRACE_S, return_when=asyncio.FIRST_COMPLETED)
        forced.cancel()
        if not exited.done():
            self.printer.say(f"{service.name} did not stop in time: SIGKILL")
            signal_group(process.pid, signal.SIGKILL)
            await exited

    async def supervise(self, service: Service) -> None:
        try:
            await self.keep_running(service)
        except Exception as exc:  # a bug here must stop everything, not leave a service behind
            self.printer.say(f"supervising {service.name} failed: {type(exc).__name__}: {exc}")
            self.failed = service.name
            self.stop.set()

    async def keep_running(self, service: Service) -> None:
        """Run one service until a stop is requested, restarting it when it dies."""
        failures = 0
        while not self.stop.is_set():
            process, output = await self.spawn(service)
            started = time.monotonic()
            code = await self.exited_or_stopped(process)
            if code is None:
                await self.terminate(service, process)
            signal_group(process.pid, signal.SIGKILL)  # whatever the child left in its group
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(output, 2.0)
            if code is None or self.stop.is_set():
                return
            failures = 1 if time.monotonic() - started > STABLE_AFTER_S else failures + 1
            if failures > MAX_RESTARTS:
                self.printer.say(
                    f"{service.name} {describe_exit(code)}; it died {failures} "
                    "times in a row, giving up"
                )
                self.failed = service.name
                self.stop.set()
                return
            delay = backoff(failures)
            self.printer.say(
                f"{service.name} {describe_exit(code)}; restarting in {delay:.0f} s "
                f"({failures}/{MAX_RESTARTS})"
            )
            await sleep_unless(self.stop, delay)

    async def announce_when_ready(self, timeout_s: float) -> None:
        if await wait_until_ready(self.services, self.printer, self.stop, timeout_s):
            for text in banner(self.services):
                self.printer.say(text)

    async def run(self, *, wait: bool, timeout_s: float) -> int:
        names = ", ".join(s.name for s in self.services)
        self.printer.say(f"starting {names}")
        tasks = [asyncio.create_task(self.supervise(s)) for s in self.services]
        announcer = asyncio.create_task(self.announce_when_ready(timeout_s)) if wait else None
        await self.stop.wait()
        if announcer is not None:
            announcer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await announcer
        await asyncio.gather(*tasks)
        self.printer.say("stopped" if self.failed is None else f"stopped ({self.failed} failed)")
        return 0 if self.failed is None else 1


def install_signal_handlers(supervisor: Supervisor) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, supervisor.request_stop, sig.name)


async def amain(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not ENV_FILE.exists():
        print(
            f"warning: {ENV_FILE} not found (is the devstack up? `make infra-up`); "
            "using the process environment only",
            file=sys.stderr,
        )
    env = child_environment(read_env_file(ENV_FILE), os.environ)
    services = [service_from_env(name, env) for name in args.only]
    taken = ports_in_use(services)
    if taken:
        for s in taken:
            print(
                f"error: {s.name}'s port {s.host}:{s.port} is already in use "
                "(is Slipway already running?)",
                file=sys.stderr,
            )
        return 1
    printer = Printer(args.only, sys.stdout, use_color(sys.stdout, os.environ))
    supervisor = Supervisor(services, env, printer)
    install_signal_handlers(supervisor)
    return await supervisor.run(wait=not args.no_wait, timeout_s=args.timeout)


def main() -> None:
    sys.exit(asyncio.run(amain()))


if __name__ == "__main__":
    main()
