"""PostgreSQL stopped for a few seconds under a running build.

The builder must ride it out by itself: the build goes on and succeeds, its end is recorded
once the database is back, the lines it printed meanwhile reach the log topic, and new builds
are taken again. This test stops the shared devstack's PostgreSQL, so it runs in the serial
fault phase of ``make test``.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from slipway_contracts import Envelope, new_event
from slipway_contracts.events.deployer import BuildRequested, GitSourceSpec
from slipway_contracts.events.logs import LINES_TOPIC
from slipway_libs.testing.pipeline import read_topic, wait_until
from slipway_libs.testing.platform import Platform
from tests.e2e.deploying import git
from tests.fault.support import outage

pytestmark = [pytest.mark.fault, pytest.mark.integration]

ORG = uuid.uuid4()


def repo_printing_around(root: Path, base_image: str, marker: str) -> Path:
    repo = root / marker.replace(" ", "-")
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "Dockerfile").write_text(
        f'FROM {base_image}\nRUN ["/bin/sh", "-c", "echo before-{marker} && {marker} && '
        f'echo after-{marker}"]\n'
    )
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "init")
    return repo


async def request_build(builder: Platform, repo: Path) -> uuid.UUID:
    command = BuildRequested(
        build_id=uuid.uuid4(),
        organization_id=ORG,
        service_id=uuid.uuid4(),
        deployment_id=uuid.uuid4(),
        source=GitSourceSpec(url=str(repo)),
        image_repository=f"test/{uuid.uuid4()}",
    )
    producer = AIOKafkaProducer(**builder.kafka.options())
    await producer.start()
    try:
        envelope = new_event(command, subject=str(command.build_id), source="test")
        await producer.send_and_wait(
            builder.prefix + command.topic, envelope.to_json(), key=str(command.build_id).encode()
        )
    finally:
        await producer.stop()
    return command.build_id


async def status(builder: Platform, build_id: uuid.UUID) -> str | None:
    """The build's status, or None while the database cannot be reached."""
    try:
        conn = await asyncpg.connect(builder.env["SLIPWAY_BUILDER_DATABASE_URL"], timeout=2)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return None
    try:
        found: str | None = await conn.fetchval("SELECT status FROM builds WHERE id = $1", build_id)
        return found
    finally:
        await conn.close()


def running(marker: str) -> bool:
    out = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout
    return bool(out.strip())


async def test_a_build_rides_out_a_database_outage(
    platform_factory, devstack, tmp_path: Path
) -> None:
    builder = await platform_factory(
        ["builder"],
        extra_env={
            "SLIPWAY_GIT_LOCAL_ROOTS": str(tmp_path),
            "SLIPWAY_BUILDER_REGISTRY": devstack.env["SLIPWAY_REGISTRY"],
        },
    )
    base = devstack.env["SLIPWAY_BASE_IMAGE"]
    marker = "sleep 17"
    build_id = await request_build(builder, repo_printing_around(tmp_path, base, marker))

    async def in_run_step() -> bool:
        return await status(builder, build_id) == "RUNNING" and running(marker)

    await wait_until(in_run_step, timeout_s=120, interval_s=0.5)
    started = time.monotonic()
    await outage("postgres", 4)
    assert running(marker), "the RUN step did not outlive the outage"
    assert time.monotonic() - started < 17, "the outage outlasted the RUN step: nothing tested"

    async def succeeded() -> bool:
        return await status(builder, build_id) == "SUCCEEDED"

    await wait_until(succeeded, timeout_s=180, interval_s=0.5)
    process = builder.services["builder"].process
    assert process is not None and process.poll() is None, builder.services["builder"].tail()

    records = await read_topic(builder.kafka, builder.prefix + LINES_TOPIC, 10_000, timeout_s=10)
    texts = [
        line["text"]
        for record in records
        if (env := Envelope.from_json(record.value)).data.get("build_id") == str(build_id)
        for line in env.data["lines"]
    ]
    assert f"before-{marker}" in texts and f"after-{marker}" in texts, texts

    # and builds are taken again
    after = await request_build(builder, repo_printing_around(tmp_path, base, "sleep 0"))

    async def after_succeeded() -> bool:
        return await status(builder, after) == "SUCCEEDED"

    await wait_until(after_succeeded, timeout_s=180, interval_s=0.5)
