"""The deployer's start slots (``parallel_starts``) pace starts on this machine; a cluster's
runtime (``PacedByCluster``) paces its own and is not gated by them, so a rollout that never gets
ready does not hold a slot every other service of every environment waits for. The local
runtime's starts stay behind the slots (its behaviour unchanged)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from services.deployer.tests.unit.fakes import FakeLiveLogs, FakeRuntime
from slipway_deployer.adapters.runtime import PacedByCluster, PortSpec, Workload
from slipway_deployer.usecases import steps


@dataclass
class FakeClusterRuntime(FakeRuntime):
    """The fake runtime advertising that it paces its own starts, as the kubernetes one does."""

    start_slots: int = 32


def _tools(slots: int) -> steps.Tools:
    settings = SimpleNamespace(apply_timeout_s=600.0)
    unused: Any = None
    return steps.Tools(
        pool=unused,
        settings=settings,  # type: ignore[arg-type]
        runtimes=unused,
        transport=unused,
        at_rest=unused,
        signals=unused,
        live=FakeLiveLogs(),  # type: ignore[arg-type]
        runtime_slots=asyncio.Semaphore(slots),
    )


def _work(name: str) -> Workload:
    return Workload(str(uuid.uuid4()), "env", name, "img:1", ports=[PortSpec(8080)])


async def _start(tools: steps.Tools, runtime: FakeRuntime, work: Workload) -> None:
    waited: list[float] = []
    async with tools.slot(waited, runtime):
        await runtime.apply(work)


async def _until(condition: Any, what: str) -> None:
    for _ in range(3000):  # a deadline for a hang (30 s), not a speed check
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


def test_the_fake_cluster_runtime_paces_itself_and_the_plain_one_does_not() -> None:
    assert isinstance(FakeClusterRuntime(), PacedByCluster)
    assert not isinstance(FakeRuntime(), PacedByCluster)


async def test_a_rollout_that_never_gets_ready_does_not_delay_another_on_the_same_cluster() -> None:
    tools, runtime = _tools(slots=1), FakeClusterRuntime()
    stuck, other = _work("stuck"), _work("other")
    runtime.hold(stuck.service_id)  # its rollout never gets ready (until the test ends)
    never_ready = asyncio.create_task(_start(tools, runtime, stuck))
    await _until(lambda: stuck.service_id in runtime.applying, "the stuck rollout started")

    # the deployer has one slot, which the stuck rollout would hold were it gated by it
    starting = asyncio.create_task(_start(tools, runtime, other))
    await _until(lambda: starting.done(), "the other service's start ended")

    await starting
    assert runtime.running() == {other.service_id: "img:1"}
    assert not never_ready.done()
    runtime.release(stuck.service_id)
    await never_ready


async def test_local_starts_still_wait_for_the_deployers_slots() -> None:
    tools, runtime = _tools(slots=1), FakeRuntime()
    slow, other = _work("slow"), _work("other")
    runtime.hold(slow.service_id)
    first = asyncio.create_task(_start(tools, runtime, slow))
    await _until(lambda: slow.service_id in runtime.applying, "the first start began")
    second = asyncio.create_task(_start(tools, runtime, other))
    for _ in range(20):  # every chance to start (no time passes), which it must not take
        await asyncio.sleep(0)

    assert other.service_id not in runtime.applying
    assert not second.done()
    runtime.release(slow.service_id)
    await asyncio.gather(first, second)
    assert runtime.timeline.index(("end", slow.service_id)) < runtime.timeline.index(
        ("start", other.service_id)
    )
