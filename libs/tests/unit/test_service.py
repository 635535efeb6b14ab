"""How a worker process lives with its long-running tasks: a crash ends the process (its
supervisor restarts it); a task that simply finishes does not."""

from __future__ import annotations

import asyncio

import pytest

from slipway_libs.service import (
    Container,
    Resources,
    ServiceDefinition,
    build_app,
    no_parts,
    open_container,
    serve_worker,
)
from slipway_libs.settings import PlatformSettings, ServiceSettings


def container(*tasks: object) -> Container[ServiceSettings, None]:
    definition = ServiceDefinition(
        name="probe",
        settings_cls=ServiceSettings,
        migrations=None,
        parts=no_parts,
        worker_tasks=lambda _: tasks,  # type: ignore[arg-type,return-value]
    )
    return Container(
        name="probe",
        settings=ServiceSettings(),
        platform=PlatformSettings(),
        definition=definition,
        parts=None,
    )


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


class Parts:
    """A service's parts that hold something to close."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.closed = False

    async def aclose(self) -> None:
        self.closed = True


async def test_a_process_builds_its_parts_once_shares_them_and_closes_them() -> None:
    built: list[Parts] = []
    seen: list[Parts] = []

    def parts(resources: Resources[ServiceSettings]) -> Parts:
        built.append(Parts(resources.name))
        return built[-1]

    def routers(container: Container[ServiceSettings, Parts]) -> tuple[()]:
        seen.append(container.parts)
        return ()

    definition = ServiceDefinition(
        name="probe", settings_cls=ServiceSettings, migrations=None, parts=parts, routers=routers
    )
    async with open_container(definition) as opened:
        build_app(opened)
        build_app(opened)
        assert not opened.parts.closed
    assert [p.name for p in built] == ["probe"]
    assert seen == [built[0], built[0]]
    assert built[0].closed
