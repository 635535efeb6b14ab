"""The builder as a real process: real git, buildah, registry and Kafka.

Commands go in on the (test-prefixed) command topic exactly as the deployer sends them; the
outcome is read back from the build topic and the registry's own API.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from slipway_contracts import Envelope, new_event
from slipway_contracts.events.builder import BUILD_TOPIC
from slipway_contracts.events.deployer import (
    BuildCancelRequested,
    BuildRequested,
    GitSourceSpec,
)
from slipway_contracts.events.logs import LINES_TOPIC
from slipway_libs.testing.platform import Platform

pytestmark = pytest.mark.integration

ORG = uuid.uuid4()


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(repo), *args],
        check=True,
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@e",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@e",
        },
    )
    return result.stdout.strip()


def make_repo(root: Path, name: str, dockerfile: str, files: dict[str, str] | None = None) -> Path:
    repo = root / name
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "Dockerfile").write_text(dockerfile)
    for path, content in (files or {}).items():
        (repo / path).write_text(content)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "init")
    return repo


@pytest.fixture(scope="module")
def repos(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("repos")


@pytest.fixture(scope="module")
async def builder(platform_factory, repos, devstack) -> Platform:
    if "SLIPWAY_BASE_IMAGE" not in devstack.env:
        pytest.fail("the devstack has no registry/base image: run `make infra-up`")
    return await platform_factory(
        ["builder"],
        extra_env={
            "SLIPWAY_GIT_LOCAL_ROOTS": str(repos),
            "SLIPWAY_BUILDER_MAX_PARALLEL_BUILDS": "2",
            "SLIPWAY_BUILDER_REGISTRY": devstack.env["SLIPWAY_REGISTRY"],
            "SLIPWAY_BUILDER_BUILDAH_ROOT": devstack.env["SLIPWAY_BUILDAH_ROOT"],
            "SLIPWAY_BUILDER_BUILDAH_RUNROOT": devstack.env["SLIPWAY_BUILDAH_RUNROOT"],
        },
    )


async def send(platform: Platform, payload: Any, build_id: uuid.UUID) -> None:
    producer = AIOKafkaProducer(**platform.kafka.options())
    await producer.start()
    try:
        envelope = new_event(payload, subject=str(build_id), source="test", organization_id=ORG)
        await producer.send_and_wait(
            platform.prefix + payload.topic, envelope.to_json(), key=str(build_id).encode()
        )
    finally:
        await producer.stop()


def request(repo: Path, *, service: uuid.UUID | None = None, **source: Any) -> BuildRequested:
    service = service or uuid.uuid4()
    return BuildRequested(
        build_id=uuid.uuid4(),
        organization_id=ORG,
        service_id=service,
        deployment_id=uuid.uuid4(),
        source=GitSourceSpec(url=str(repo), **source),
        image_repository=f"test/{service}",
    )


async def read(platform: Platform, topic: str, timeout_s: float) -> AsyncIterator[Envelope]:
    """Every event of the (test-prefixed) topic from its start, as they come, for a while."""
    consumer = AIOKafkaConsumer(
        platform.prefix + topic,
        **platform.kafka.options(),
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    yield Envelope.from_json(record.value)
    finally:
        await consumer.stop()


async def events(
    platform: Platform,
    build_id: uuid.UUID,
    *,
    until: set[str],
    timeout_s: float = 240,
    topic: str = BUILD_TOPIC,
) -> list[Envelope]:
    """The build's events, in order, up to the first whose type is in ``until``."""
    found: list[Envelope] = []
    async with contextlib.aclosing(read(platform, topic, timeout_s)) as envelopes:
        async for env in envelopes:
            if env.data.get("build_id") == str(build_id):
                found.append(env)
                if env.type in until:
                    return found
    seen = [e.type for e in found]
    raise AssertionError(f"no {until} for {build_id}; got {seen}\n{await state(platform)}")


async def state(platform: Platform) -> str:
    """What the builder's database and log say, for a failure message."""
    conn = await asyncpg.connect(platform.env["SLIPWAY_BUILDER_DATABASE_URL"])
    try:
        builds = await conn.fetch(
            "SELECT id, status, cancel_requested, worker_pid, pgid, queued_at, started_at,"
            " finished_at FROM builds ORDER BY queued_at"
        )
        outbox = await conn.fetchrow(
            "SELECT count(*) AS rows, min(created_at) AS oldest, min(xid::text) AS min_xid,"
            " pg_snapshot_xmin(pg_current_snapshot())::text AS xmin FROM outbox"
        )
        writers = await conn.fetch(
            "SELECT pid, datname, state, backend_xid::text AS xid, xact_start, left(query, 120)"
            " AS query FROM pg_stat_activity WHERE backend_xid IS NOT NULL"
        )
    finally:
        await conn.close()
    lines = ["builds:", *map(str, map(dict, builds)), f"outbox: {dict(outbox)}", "writers:"]
    lines += [str(dict(w)) for w in writers]
    return "\n".join([*lines, "builder log:", platform.services["builder"].tail(60)])


FINAL = {"builder.BuildSucceeded", "builder.BuildFailed", "builder.BuildCanceled"}


async def image_config(
    registry: str, repository: str, tag: str, auth: tuple[str, str] | None = None
) -> tuple[str, dict[str, Any]]:
    accept = (
        "application/vnd.oci.image.manifest.v1+json, "
        "application/vnd.docker.distribution.manifest.v2+json"
    )
    async with httpx.AsyncClient(base_url=f"http://{registry}/v2", auth=auth) as client:
        manifest = await client.get(f"/{repository}/manifests/{tag}", headers={"Accept": accept})
        manifest.raise_for_status()
        config = await client.get(f"/{repository}/blobs/{manifest.json()['config']['digest']}")
        return manifest.headers["Docker-Content-Digest"], config.json()["config"]


async def test_build_push_digest_then_skip_same_commit_and_rebuild_new_commit(
    builder, repos, devstack
) -> None:
    base = devstack.env["SLIPWAY_BASE_IMAGE"]
    repo = make_repo(
        repos,
        "site",
        f"""FROM {base}
COPY index.html /www/index.html
ENV GREETING=hello
RUN ["/bin/sh", "-c", "echo built > /www/built.txt"]
EXPOSE 8080
CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]
""",
        {"index.html": "<h1>v1</h1>"},
    )
    first = request(repo)
    await send(builder, first, first.build_id)
    done = await events(builder, first.build_id, until=FINAL)
    assert [e.type for e in done] == [
        "builder.BuildQueued",
        "builder.BuildStarted",
        "builder.BuildSucceeded",
    ], done[-1].data
    result = done[-1].data
    commit = git(repo, "rev-parse", "HEAD")
    assert result["commit"] == commit and result["skipped"] is False
    assert (
        result["image"] == f"{devstack.env['SLIPWAY_REGISTRY']}/{first.image_repository}:{commit}"
    )
    digest, config = await image_config(
        devstack.env["SLIPWAY_REGISTRY"], first.image_repository, commit, devstack.registry_auth
    )
    assert result["digest"] == digest
    assert "GREETING=hello" in config["Env"]
    assert "8080/tcp" in config["ExposedPorts"]
    assert config["Cmd"] == ["httpd", "-f", "-p", "8080", "-h", "/www"]
    logs = await events(builder, first.build_id, until={"logs.LogLinesAppended"}, topic=LINES_TOPIC)
    assert logs[0].data["deployment_id"] == str(first.deployment_id)

    again = request(repo, service=first.service_id)
    await send(builder, again, again.build_id)
    skipped = (await events(builder, again.build_id, until=FINAL))[-1]
    assert skipped.type == "builder.BuildSucceeded" and skipped.data["skipped"] is True
    assert skipped.data["digest"] == digest

    (repo / "index.html").write_text("<h1>v2</h1>")
    git(repo, "commit", "-qam", "v2")
    newer = request(repo, service=first.service_id)
    await send(builder, newer, newer.build_id)
    rebuilt = (await events(builder, newer.build_id, until=FINAL))[-1]
    assert rebuilt.data["skipped"] is False
    assert rebuilt.data["commit"] == git(repo, "rev-parse", "HEAD") != commit


async def test_a_failing_run_step_fails_with_its_log_lines(builder, repos, devstack) -> None:
    repo = make_repo(
        repos,
        "broken",
        f"""FROM {devstack.env["SLIPWAY_BASE_IMAGE"]}
RUN ["/bin/sh", "-c", "echo about-to-fail && exit 3"]
""",
    )
    command = request(repo)
    await send(builder, command, command.build_id)
    failed = (await events(builder, command.build_id, until=FINAL))[-1]
    assert failed.type == "builder.BuildFailed"
    assert failed.data["reason"] == "BUILD_FAILED"
    assert any("about-to-fail" in line for line in failed.data["last_lines"])


async def test_missing_dockerfile_and_hostile_source_fail_with_a_reason(builder, repos) -> None:
    repo = make_repo(repos, "nodocker", "FROM scratch\n")
    missing = request(repo, dockerfile_path="build/Dockerfile")
    hostile = BuildRequested(
        build_id=uuid.uuid4(),
        organization_id=ORG,
        service_id=uuid.uuid4(),
        source=GitSourceSpec(url="ext::sh -c touch% /tmp/slipway-pwned"),
        image_repository="test/hostile",
    )
    outside = BuildRequested(
        build_id=uuid.uuid4(),
        organization_id=ORG,
        service_id=uuid.uuid4(),
        source=GitSourceSpec(url="/etc"),
        image_repository="test/outside",
    )
    for command in (missing, hostile, outside):
        await send(builder, command, command.build_id)
    reasons = {}
    for command in (missing, hostile, outside):
        final = (await events(builder, command.build_id, until=FINAL))[-1]
        assert final.type == "builder.BuildFailed"
        reasons[command.build_id] = final.data["reason"]
    assert reasons[missing.build_id] == "DOCKERFILE_NOT_FOUND"
    assert reasons[hostile.build_id] == "TRANSPORT_NOT_ALLOWED"
    assert reasons[outside.build_id] == "LOCAL_PATH_NOT_ALLOWED"
    assert not Path("/tmp/slipway-pwned").exists()


async def builds_started(
    platform: Platform, build_ids: list[uuid.UUID], *, want: int, timeout_s: float = 240
) -> set[uuid.UUID]:
    """Which of the builds have started, once ``want`` have or the time is up."""
    wanted = {str(build_id): build_id for build_id in build_ids}
    started: set[uuid.UUID] = set()
    async with contextlib.aclosing(read(platform, BUILD_TOPIC, timeout_s)) as envelopes:
        async for env in envelopes:
            build_id = wanted.get(str(env.data.get("build_id")))
            if env.type == "builder.BuildStarted" and build_id is not None:
                started.add(build_id)
                if len(started) >= want:
                    break
    return started


def _build_processes(marker: str) -> list[str]:
    out = subprocess.run(["pgrep", "-af", marker], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "pgrep" not in line]


async def test_cancel_stops_the_whole_build_and_the_cap_queues_a_third(
    builder, repos, devstack
) -> None:
    base = devstack.env["SLIPWAY_BASE_IMAGE"]
    commands = []
    for i in range(3):
        marker = f"sleep {301 + i}"  # long: a loaded machine may take 30 s to look
        repo = make_repo(
            repos,
            f"slow{i}",
            f"""FROM {base}
RUN ["/bin/sh", "-c", "echo started-{i} && {marker}"]
""",
        )
        commands.append((request(repo), marker))
    # the builder gets the three commands together (paused while they are sent): keyed by build,
    # they travel on different partitions and come in any order, yet the first two requested
    # are the two that start; the third waits for a free slot
    paused = builder.services["builder"].process
    assert paused is not None
    os.kill(paused.pid, signal.SIGSTOP)
    try:
        for command, _ in commands:
            await send(builder, command, command.build_id)
    finally:
        os.kill(paused.pid, signal.SIGCONT)
    ids = [command.build_id for command, _ in commands]
    started = await builds_started(builder, ids, want=2)
    assert started == set(ids[:2]), await state(builder)
    await asyncio.sleep(3)
    assert await builds_started(builder, ids, want=3, timeout_s=3) == started
    marker = commands[0][1]
    deadline = time.monotonic() + 120
    while not _build_processes(marker) and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    if not _build_processes(marker):  # say what became of the builds
        raise AssertionError(f"the long RUN step never started:\n{await state(builder)}")
    for command, _ in commands:
        cancel = BuildCancelRequested(build_id=command.build_id, organization_id=ORG)
        await send(builder, cancel, command.build_id)
    for command, marker in commands:
        final = (await events(builder, command.build_id, until=FINAL))[-1]
        assert final.type == "builder.BuildCanceled", final.data
        assert not _build_processes(marker), f"{marker} left running"


async def test_a_builder_killed_mid_build_fails_it_on_restart_and_leaves_nothing_running(
    builder, repos, devstack
) -> None:
    marker = "sleep 53"
    repo = make_repo(
        repos,
        "crash",
        f"""FROM {devstack.env["SLIPWAY_BASE_IMAGE"]}
RUN ["/bin/sh", "-c", "echo long && {marker}"]
""",
    )
    command = request(repo)
    await send(builder, command, command.build_id)
    await events(builder, command.build_id, until={"builder.BuildStarted"})
    deadline = time.monotonic() + 120
    while not _build_processes(marker) and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    assert _build_processes(marker)
    builder.stop("builder", signal.SIGKILL)
    builder.start("builder")
    await builder.wait_ready("builder")
    final = (await events(builder, command.build_id, until=FINAL))[-1]
    assert (final.type, final.data["reason"]) == ("builder.BuildFailed", "WORKER_LOST")
    assert not _build_processes(marker)
