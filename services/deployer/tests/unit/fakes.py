"""In-memory stand-ins for the deployer's adapters, for tests whose point is the use case's logic
(the execution's stage order, failures, cancel, resume), not processes.

``FakeRuntime`` keeps the invariants of the runtime port (``runtime/base.py``): everything keyed
by service id, ``apply`` replaces and returns once "healthy" or raises ``RuntimeFailure``,
``stop`` keeps the definition for ``restart``, ``delete`` is idempotent, ``status`` and
``restart`` of an unknown service raise ``NOT_FOUND``. What the real one does with processes it
does with a dict, and it records every call so a test can assert what was asked of it, in which
order, and what was running at the same time.

Two handles a test steers it with: ``fail(service_id, reason)`` makes that service's next
applies fail; ``hold(service_id)`` makes its applies wait until ``release(service_id)`` (a slow
rollout, to cancel or crash in the middle of).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from slipway_deployer.adapters.live_logs import Owner
from slipway_deployer.adapters.runtime import (
    Databases,
    Deployed,
    FailureReason,
    JobResult,
    LogLine,
    RunningState,
    RunStatus,
    Runtime,
    RuntimeFailure,
    Workload,
)


@dataclass
class Call:
    """One call the runtime received: ``op`` (apply, stop...), the service, the image applied."""

    op: str
    service_id: str
    image: str | None = None


@dataclass
class _Service:
    workload: Workload
    status: RunStatus
    restarts: int = 0


@dataclass
class FakeRuntime:
    calls: list[Call] = field(default_factory=list)
    # (op, service_id) in the order things happened: "start" when an apply begins, "end" when it
    # returns (or fails, or is canceled)
    timeline: list[tuple[str, str]] = field(default_factory=list)
    applying: set[str] = field(default_factory=set)  # applies in flight now
    _services: dict[str, _Service] = field(default_factory=dict)
    _failures: dict[str, tuple[FailureReason, str]] = field(default_factory=dict)
    _gates: dict[str, asyncio.Event] = field(default_factory=dict)

    # -- steering ------------------------------------------------------------------------------

    def fail(self, service_id: Any, reason: FailureReason, message: str = "it broke") -> None:
        self._failures[str(service_id)] = (reason, message)

    def hold(self, service_id: Any) -> None:
        self._gates[str(service_id)] = asyncio.Event()

    def release(self, service_id: Any) -> None:
        self._gates.pop(str(service_id)).set()

    # -- what a test reads ---------------------------------------------------------------------

    def applied(self, service_id: Any) -> list[str]:
        """The images ``apply`` was asked to run for one service, in order."""
        sid = str(service_id)
        return [c.image or "" for c in self.calls if c.op == "apply" and c.service_id == sid]

    def running(self) -> dict[str, str]:
        """Service id -> image, of what runs now."""
        return {
            sid: svc.workload.image
            for sid, svc in self._services.items()
            if svc.status is RunStatus.RUNNING
        }

    # -- the runtime port ------------------------------------------------------------------------

    async def apply(self, workload: Workload) -> Deployed:
        sid = workload.service_id
        self.calls.append(Call("apply", sid, workload.image))
        self.timeline.append(("start", sid))
        self.applying.add(sid)
        try:
            gate = self._gates.get(sid)
            if gate is not None:
                await gate.wait()
            await asyncio.sleep(0)  # a real apply always yields: let the others run
            if sid in self._failures:
                reason, message = self._failures[sid]
                self._services[sid] = _Service(workload, RunStatus.ERROR)
                raise RuntimeFailure(reason, message)
            self._services[sid] = _Service(workload, RunStatus.RUNNING)
        finally:
            self.applying.discard(sid)
            self.timeline.append(("end", sid))
        urls = {p.port: f"http://127.0.0.1:{20000 + p.port}" for p in workload.ports}
        default = workload.default_port
        return Deployed(
            sid,
            {p.port: 20000 + p.port for p in workload.ports},
            urls,
            default.port if default else None,
        )

    async def stop(self, service_id: str) -> None:
        self.calls.append(Call("stop", service_id))
        svc = self._services.get(service_id)
        if svc is not None:
            svc.status = RunStatus.STOPPED

    async def restart(self, service_id: str) -> None:
        self.calls.append(Call("restart", service_id))
        svc = self._known(service_id)
        svc.status, svc.restarts = RunStatus.RUNNING, svc.restarts + 1

    async def delete(self, service_id: str) -> None:
        self.calls.append(Call("delete", service_id))
        self._services.pop(service_id, None)

    async def status(self, service_id: str) -> RunningState:
        svc = self._known(service_id)
        return RunningState(svc.status, svc.restarts, {})

    async def logs(self, service_id: str) -> AsyncIterator[LogLine]:
        self._known(service_id)
        yield LogLine("stdout", f"{service_id} is running", datetime.now(UTC))

    async def run_job(self, workload: Workload, *, timeout_s: float) -> JobResult:
        self.calls.append(Call("run_job", workload.service_id, workload.image))
        return JobResult(0, None, 0.0)

    async def adopt(self) -> list[str]:
        return [sid for sid, svc in self._services.items() if svc.status is RunStatus.RUNNING]

    async def close(self) -> None:
        return None

    def _known(self, service_id: str) -> _Service:
        svc = self._services.get(service_id)
        if svc is None:
            raise RuntimeFailure(FailureReason.NOT_FOUND, f"no service {service_id}")
        return svc


class NoDatabases:
    """For executions without database services: any use of it is a test's mistake."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"databases.{name} used: this test deploys no database")


@dataclass
class FakeLiveLogs:
    """Records who is followed; forwards nothing."""

    followed: list[uuid.UUID] = field(default_factory=list)

    def follow_service(self, owner: Owner, service_id: uuid.UUID, runtime: Runtime) -> None:
        self.followed.append(service_id)

    def follow_job(self, owner: Owner, service_id: uuid.UUID, runtime: Runtime) -> None:
        self.followed.append(service_id)

    def follow_database(self, owner: Owner, service_id: uuid.UUID, databases: Databases) -> None:
        self.followed.append(service_id)

    def forget(self, service_id: uuid.UUID) -> None:
        return None

    async def aclose(self) -> None:
        return None
