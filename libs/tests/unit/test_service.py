"""How a worker process lives with its long-running tasks: a crash ends the process (its
supervisor restarts it); a task that simply finishes does not."""

from __future__ import annotations

import asyncio

import pytest

from slipway_libs.service import Container, ServiceDefinition, serve_worker
from slipway_libs.settings import PlatformSettings, ServiceSettings


def container(*tasks: object) -> Container:
    definition = ServiceDefinition(
        name="probe",
        settings_cls=ServiceSettings,
        migrations=None,
        worker_tasks=lambda _: tasks,  # type: ignore[arg-type,return-value]
    )
    return Container(definition=definition, settings=ServiceSettings(), platform=PlatformSettings())


async def test_a_crashed_worker_task_ends_the_worker_with_its_error() -> None:
    async def executor() -> None:
        await asyncio.sleep(0.05)
        raise RuntimeError("executor died")

    with pytest.raises(RuntimeError, match="executor died"):
        await asyncio.wait_for(serve_worker(container(executor), asyncio.Event()), 5)


async def test_a_finished_worker_task_leaves_the_worker_running_until_stopped() -> None:
    stop = asyncio.Event()
    finished = asyncio.Event()
    stopped = asyncio.Event()

    async def once() -> None:
        finished.set()

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            stopped.set()

    worker = asyncio.create_task(serve_worker(container(once, forever), stop))
    await asyncio.wait_for(finished.wait(), 5)
    await asyncio.sleep(0.1)
    assert not worker.done()
    stop.set()
    await asyncio.wait_for(worker, 5)
    assert stopped.is_set()  # what still ran was stopped with the worker
