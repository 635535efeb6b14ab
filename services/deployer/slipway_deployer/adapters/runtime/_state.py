"""What the local runtime keeps on disk so that a new deployer process can adopt what runs.

Layout (the root and every directory 0700, every file 0600, all owned by the deployer's user):

    <root>/.lock                      flock held by the one live LocalRuntime on this root
    <root>/services/<key>/state.json  ServiceRecord (no secret values)
    <root>/services/<key>/env         the resolved environment, sourced by the app's shell
    <root>/services/<key>/stdout.log, stderr.log   what the process printed (bounded)
    <root>/services/<key>/tmp/        buildah's TMPDIR (the OCI spec of the running process)
    <root>/jobs/<key>-<token>/...     the same for a job while it runs

Invariants: state.json is replaced atomically (write + rename), so a crashed deployer leaves the
old or the new record, never half of one (no fsync: it stalled the event loop when many services
started at once, and a machine crash, the one case it covers, also ends what the record
describes; a record that does not parse is not adopted); secrets are only in ``env`` (and
buildah's own files under ``tmp/``), both removed with the service.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
import shlex
import shutil
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from slipway_deployer.adapters.runtime.base import FailureReason, HealthSpec, RuntimeFailure

Phase = Literal["running", "stopped", "failed"]
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def shell_safe_names(env: Mapping[str, str]) -> bool:
    """Every name can be exported by a POSIX shell."""
    return all(_NAME.match(name) for name in env)


@dataclass
class ServiceRecord:
    slot: str  # the directory, relative to the root
    service_id: str
    environment_id: str
    name: str
    image: str
    kind: Literal["service", "job"]
    container: str
    rootfs: str
    run_argv: list[str]  # the full `buildah run` argv (no secret values)
    host_ports: list[tuple[int, int]]  # (declared, host)
    default_port: int | None
    health: HealthSpec | None = None
    phase: Phase = "running"
    message: str | None = None
    pid: int | None = None  # `buildah run`, leader of its own process group
    start_ticks: int | None = None
    restarts: int = 0

    @property
    def port_map(self) -> dict[int, int]:
        return dict(self.host_ports)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ServiceRecord:
        data = json.loads(text)
        data["host_ports"] = [tuple(pair) for pair in data["host_ports"]]
        if data.get("health") is not None:
            data["health"] = HealthSpec(**data["health"])
        return cls(**data)


class StateDir:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock_fd: int | None = None
        for path in (root, root / "services", root / "jobs"):
            path.mkdir(mode=0o700, parents=True, exist_ok=True)

    def lock(self) -> None:
        """Take the root's lock, or raise if another LocalRuntime holds it."""
        if self._lock_fd is not None:
            return
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RuntimeFailure(
                FailureReason.RUNTIME_ERROR, f"another local runtime uses {self.root}"
            ) from None
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None

    def new_slot(self, service_id: str, kind: Literal["service", "job"]) -> str:
        key = _key(service_id)
        slot = f"services/{key}" if kind == "service" else f"jobs/{key}-{secrets.token_hex(4)}"
        path = self.root / slot
        path.mkdir(mode=0o700, exist_ok=True)
        (path / "tmp").mkdir(mode=0o700, exist_ok=True)
        return slot

    def path(self, record: ServiceRecord, name: str) -> Path:
        return self.root / record.slot / name

    def save(self, record: ServiceRecord) -> None:
        target = self.path(record, "state.json")
        _write_private(target.with_suffix(".tmp"), record.to_json())
        os.replace(target.with_suffix(".tmp"), target)

    def write_env(
        self, record: ServiceRecord, env: Mapping[str, str], *, owner: int | None = None
    ) -> Path:
        """The env file a POSIX shell sources (``export NAME='value'`` lines); 0400 and owned
        by ``owner``, the workload's uid, when given (the workload reads it, no other user)."""
        text = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items())
        target = self.path(record, "env")
        _write_private(target, text)
        if owner is not None:
            os.chown(target, owner, owner)
            os.chmod(target, 0o400)
        return target

    def load_all(self) -> list[ServiceRecord]:
        records = []
        for state in sorted(self.root.glob("*/*/state.json")):
            with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
                records.append(ServiceRecord.from_json(state.read_text()))
        return records

    def remove(self, record: ServiceRecord) -> None:
        shutil.rmtree(self.root / record.slot, ignore_errors=True)

    def clear_tmp(self, record: ServiceRecord) -> None:
        """buildah's leftovers (a killed `buildah run` leaves its spec dir behind)."""
        tmp = self.path(record, "tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(mode=0o700, exist_ok=True)


def _key(service_id: str) -> str:
    digest = hashlib.sha256(service_id.encode()).hexdigest()[:10]
    return f"{re.sub(r'[^A-Za-z0-9_.-]', '_', service_id)[:48]}-{digest}"


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
