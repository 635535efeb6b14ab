"""The fake runtime keeps the invariants of the runtime port (``runtime/base.py``), so tests that
use it in place of the local runtime test the execution against what a real runtime does."""

from __future__ import annotations

import asyncio

import pytest

from services.deployer.tests.unit.fakes import FakeRuntime
from slipway_deployer.adapters.runtime import (
    FailureReason,
    PortSpec,
    RunStatus,
    Runtime,
    RuntimeFailure,
    Workload,
)


def work(image: str = "docker.io/library/web:1") -> Workload:
    return Workload("svc", "env", "web", image, ports=[PortSpec(8080, default=True)])


def test_it_is_a_runtime() -> None:
    runtime: Runtime = FakeRuntime()  # mypy checks the port; this checks it at run time too
    assert callable(runtime.apply)


async def test_apply_replaces_stop_keeps_restart_brings_back_delete_forgets() -> None:
    runtime = FakeRuntime()
    deployed = await runtime.apply(work())
    assert deployed.url is not None
    await runtime.apply(work("docker.io/library/web:2"))
    assert runtime.running() == {"svc": "docker.io/library/web:2"}
    await runtime.stop("svc")
    assert (await runtime.status("svc")).status is RunStatus.STOPPED
    await runtime.restart("svc")
    assert (await runtime.status("svc")).status is RunStatus.RUNNING
    await runtime.delete("svc")
    await runtime.delete("svc")  # idempotent
    with pytest.raises(RuntimeFailure) as unknown:
        await runtime.status("svc")
    assert unknown.value.reason is FailureReason.NOT_FOUND


async def test_a_failing_service_raises_its_reason_and_reads_error() -> None:
    runtime = FakeRuntime()
    runtime.fail("svc", FailureReason.HEALTHCHECK_FAILED, "no answer on /health")
    with pytest.raises(RuntimeFailure) as failed:
        await runtime.apply(work())
    assert failed.value.reason is FailureReason.HEALTHCHECK_FAILED
    assert (await runtime.status("svc")).status is RunStatus.ERROR


async def test_a_held_apply_waits_for_its_release_and_can_be_canceled() -> None:
    runtime = FakeRuntime()
    runtime.hold("svc")
    applying = asyncio.create_task(runtime.apply(work()))
    await asyncio.sleep(0.01)
    assert runtime.applying == {"svc"} and not applying.done()
    applying.cancel()
    with pytest.raises(asyncio.CancelledError):
        await applying
    assert runtime.applying == set() and runtime.running() == {}
    runtime.release("svc")
    await runtime.apply(work())
    assert runtime.running() == {"svc": "docker.io/library/web:1"}
