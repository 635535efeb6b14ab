"""Process, file and network helpers of the devstack."""

from __future__ import annotations

import contextlib
import fcntl
import http.client
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from slipway_devstack.settings import HOST, STATE, DevstackError


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
