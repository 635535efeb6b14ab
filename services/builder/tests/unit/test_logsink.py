"""The build log while its database is unreachable: lines wait, the oldest go beyond the limit,
and the first write that works says how many went."""

from __future__ import annotations

import uuid
from typing import Any

from slipway_builder.adapters.build_log import BuildLog
from slipway_builder.domain.builds import Build
from slipway_contracts.events.logs import LogLine


class Outage:
    """Stands for the database: refuses writes while ``down``, else keeps what was written."""

    def __init__(self) -> None:
        self.down = True
        self.written: list[str] = []

    async def write(self, lines: list[LogLine]) -> None:
        if self.down:
            raise ConnectionRefusedError("database down")
        self.written += [line.text for line in lines]


def build_log(outage: Outage, **options: Any) -> BuildLog:
    build = Build(
        id=uuid.uuid4(),
        organization_id=uuid.uuid4(),
        environment_id=None,
        service_id=uuid.uuid4(),
        deployment_id=None,
        source={},
        build_args={},
        image_repository="registry.example/app",
        git_token_sealed=None,
        git_ssh_key_sealed=None,
        git_known_hosts=None,
        status="RUNNING",
        worker_pid=None,
        pgid=None,
    )
    log = BuildLog(pool=None, build=build, secrets=[], **options)  # type: ignore[arg-type]
    log._write = outage.write  # type: ignore[method-assign]
    return log


async def test_lines_wait_for_the_database_and_are_written_in_order() -> None:
    outage = Outage()
    log = build_log(outage)
    for i in range(5):
        await log.line("stdout", f"line {i}")
    assert await log.flush() is False
    await log.line("stdout", "line 5")
    outage.down = False
    assert await log.flush() is True
    assert outage.written == [f"line {i}" for i in range(6)]


async def test_beyond_the_limit_the_oldest_lines_go_and_a_line_says_so() -> None:
    outage = Outage()
    log = build_log(outage, max_pending=3)
    for i in range(5):
        await log.line("stdout", f"line {i}")
    assert await log.flush() is False
    outage.down = False
    assert await log.flush() is True
    assert outage.written == [
        "2 log lines dropped while the database was unreachable",
        "line 2",
        "line 3",
        "line 4",
    ]
    await log.line("stdout", "line 5")
    await log.flush()
    assert outage.written[-1] == "line 5"  # the note came once
