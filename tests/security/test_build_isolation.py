"""Builds are workloads too (issue 10, item 9): a Dockerfile's ``RUN`` steps cannot reach the
platform.

The builder runs a user's ``RUN`` steps on the platform's own host (buildah, chroot isolation,
host network). What keeps them out: they run in a user namespace whose root is an unprivileged
host uid (the builder's id-mapped storage), without ``CAP_SYS_CHROOT``. So a ``RUN`` step can
neither signal nor read (``/proc/<pid>/environ``: every credential is there) the platform's
processes, nor read their shared memory in the host's ``/dev/shm``, nor leave its chroot; had
it left, the builder's files (its registry auth file, its workspace) are root's, 0600/0700.
Before, root in a ``RUN`` step was the host's root: it could kill the builder, read
PostgreSQL's shared memory and, out of its chroot, the builder's registry auth file.

A real build probes all of that from a ``RUN`` step, aimed at the builder process itself, and
prints what it could do; the build log (``logs.lines.v1``) tells. The escape probe is a static C
program (the base image has only busybox, whose ``chroot`` always enters the new root): it
chroots into a subdirectory without entering it, climbs out with ``..`` and reads the builder's
files from the host's root; it prints only whether it could, never what it read.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from slipway_contracts import Envelope, new_event
from slipway_contracts.events.builder import BUILD_TOPIC
from slipway_contracts.events.deployer import BuildRequested, GitSourceSpec
from slipway_contracts.events.logs import LINES_TOPIC
from slipway_libs.testing.platform import Platform
from slipway_libs.testing.plugin import Devstack

pytestmark = pytest.mark.integration

ORG = uuid.uuid4()
FINAL = {"builder.BuildSucceeded", "builder.BuildFailed", "builder.BuildCanceled"}
LINGER_S = 400_000 + uuid.uuid4().int % 100_000  # this module's own `sleep`, found by argv

# reads each path given from the host's root after leaving the chroot; prints `<path>=<result>`
ESCAPE_C = r"""
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
int main(int argc, char **argv) {
  mkdir("/probe-jail", 0755);
  if (chroot("/probe-jail") != 0) {
    printf("probe escape=NO_CHROOT (%s)\n", strerror(errno));
    return 0;
  }
  for (int i = 0; i < 64; i++) chdir("..");
  if (chroot(".") != 0) { printf("probe escape=NO_CHROOT_BACK\n"); return 0; }
  printf("probe escape=LEFT_THE_CHROOT\n");
  for (int i = 1; i < argc; i++) {
    int fd = open(argv[i], O_RDONLY);
    if (fd < 0) { printf("probe read %s=DENIED (%s)\n", argv[i], strerror(errno)); continue; }
    printf("probe read %s=READ\n", argv[i]);  /* opened: a file readable, a directory listable */
    close(fd);
  }
  return 0;
}
"""


def _git(repo: Path, *args: str) -> None:
    identity = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e"}
    identity |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e"}
    subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, env=os.environ | identity
    )


def _escape_binary(into: Path) -> None:
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.fail("the escape probe needs a C compiler (Debian: build-essential)")
    source = into / "escape.c"
    source.write_text(ESCAPE_C)
    argv = [compiler, "-static", "-O1", "-o", str(into / "escape"), str(source)]
    subprocess.run(argv, check=True)
    source.unlink()


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("build-isolation-repos")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("build-isolation-workspace")


@pytest.fixture(scope="module")
async def builder(platform_factory, repos: Path, workspace: Path, devstack: Devstack) -> Platform:
    if "SLIPWAY_BASE_IMAGE" not in devstack.env:
        pytest.fail("the devstack has no registry/base image: run `make infra-up`")
    if devstack.registry_auth is None:
        pytest.fail("the devstack's registry has no users: run `make infra-up` again")
    return await platform_factory(
        ["builder"],
        extra_env={
            "SLIPWAY_GIT_LOCAL_ROOTS": str(repos),
            "SLIPWAY_BUILDER_WORKSPACE": str(workspace),
        },
    )


async def _send(platform: Platform, command: BuildRequested) -> None:
    producer = AIOKafkaProducer(**platform.kafka.options())
    await producer.start()
    try:
        envelope = new_event(
            command, subject=str(command.build_id), source="test", organization_id=ORG
        )
        await producer.send_and_wait(
            platform.prefix + command.topic, envelope.to_json(), key=str(command.build_id).encode()
        )
    finally:
        await producer.stop()


async def _read(platform: Platform, topic: str, timeout_s: float) -> AsyncIterator[Envelope]:
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


async def _outcome(platform: Platform, build_id: uuid.UUID) -> Envelope:
    async with contextlib.aclosing(_read(platform, BUILD_TOPIC, 240)) as envelopes:
        async for env in envelopes:
            if env.data.get("build_id") == str(build_id) and env.type in FINAL:
                return env
    raise AssertionError(f"no end for {build_id}\n{platform.services['builder'].tail(60)}")


async def _log(platform: Platform, build_id: uuid.UUID, *, until: str) -> list[str]:
    """The build's log lines, up to the first that starts with ``until``."""
    lines: list[str] = []
    async with contextlib.aclosing(_read(platform, LINES_TOPIC, 60)) as envelopes:
        async for env in envelopes:
            if env.data.get("build_id") != str(build_id):
                continue
            lines += [line["text"] for line in env.data["lines"]]
            if any(line.startswith(until) for line in lines):
                return lines
    raise AssertionError(f"no {until!r} in the log of {build_id}: {lines}")


def _probes(lines: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in lines:
        if line.startswith("probe ") and "=" in line:
            key, _, value = line.removeprefix("probe ").partition("=")
            found[key] = value
    return found


async def test_a_run_step_cannot_reach_the_builder_process_nor_its_files(
    builder: Platform, repos: Path, workspace: Path, devstack: Devstack
) -> None:
    process = builder.services["builder"].process
    assert process is not None
    pid = process.pid
    # one directory per registry and user (``.registry-<digest>``), written at start
    authfiles = list(workspace.glob(".registry-*/auth.json"))
    assert len(authfiles) == 1, f"the builder writes its registry auth file at start: {authfiles}"
    authfile = authfiles[0]
    repo = repos / "probe"
    repo.mkdir()
    _escape_binary(repo)
    # each probe prints one `probe <what>=<result>` line; the step itself always succeeds
    steps = " ; ".join(
        [
            "cat /proc/self/uid_map | sed 's/^/probe uid_map=/'",
            "echo probe uid=$(id -u)",
            "if cat /proc/$PID/environ >/dev/null 2>&1; then echo probe environ=READ;"
            " else echo probe environ=DENIED; fi",
            "if kill -0 $PID 2>/dev/null; then echo probe signal=SENT;"
            " else echo probe signal=DENIED; fi",
            "if ls /proc/$PID/root/ >/dev/null 2>&1; then echo probe proc_root=READ;"
            " else echo probe proc_root=DENIED; fi",
            # PostgreSQL's shared memory (its data pages), when the host's server keeps it there
            "for f in /dev/shm/PostgreSQL.*; do [ -e $f ] || break;"
            " if head -c 1 $f >/dev/null 2>&1; then echo probe shm=READ;"
            " else echo probe shm=DENIED; fi; break; done",
            f"/escape {authfile} {workspace} /proc/$PID/environ",
            "echo probe end=1",
        ]
    )
    (repo / "Dockerfile").write_text(
        f"FROM {devstack.env['SLIPWAY_BASE_IMAGE']}\n"
        "ARG PID\n"
        "COPY escape /escape\n"
        f'RUN ["/bin/sh", "-c", "{steps}"]\n'
        # a daemon outlives its step (it leaves the step's process group): the builder kills it
        f"RUN setsid sleep {LINGER_S} </dev/null >/dev/null 2>&1 & echo started\n"
        "RUN echo built > /built.txt\n"
    )
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "probe")
    service = uuid.uuid4()
    command = BuildRequested(
        build_id=uuid.uuid4(),
        organization_id=ORG,
        service_id=service,
        deployment_id=uuid.uuid4(),
        source=GitSourceSpec(url=str(repo)),
        image_repository=f"test/{service}",
        build_args={"PID": str(pid)},
    )
    await _send(builder, command)
    outcome = await _outcome(builder, command.build_id)
    assert outcome.type == "builder.BuildSucceeded", outcome.data  # confinement breaks no build
    probes = _probes(await _log(builder, command.build_id, until="probe end="))
    assert process.poll() is None, "the build's RUN step killed the builder"

    # root in the step is an unprivileged host uid: `0 <host uid> <count>`, host uid not 0
    inside, host, _count = probes["uid_map"].split()
    assert inside == "0" and int(host) > 0, probes
    assert probes["uid"] == "0", probes  # the image still sees root: builds behave as before
    assert probes["environ"] == "DENIED", probes
    assert probes["signal"] == "DENIED", probes
    assert probes["proc_root"] == "DENIED", probes
    assert probes.get("shm", "DENIED") == "DENIED", probes
    assert probes["escape"].startswith("NO_CHROOT"), probes
    leaked = [k for k, v in probes.items() if k.startswith("read ") and v == "READ"]
    assert not leaked, probes
    assert await _gone(f"sleep {LINGER_S}", within_s=60), "a RUN step's daemon outlived the build"


async def _gone(argv: str, *, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if not _running(argv):
            return True
        await asyncio.sleep(0.2)
    return False


def _running(argv: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if (
                entry.name.isdigit()
                and (entry / "cmdline").read_bytes() == argv.encode().replace(b" ", b"\0") + b"\0"
            ):
                found.append(int(entry.name))
    return found


async def test_a_repository_under_the_roots_whose_git_data_lies_outside_them_is_not_built(
    builder: Platform, repos: Path, tmp_path: Path
) -> None:
    """Whoever may write under ``SLIPWAY_GIT_LOCAL_ROOTS`` could leave there a ``.git`` file
    naming a repository elsewhere on the host; git would build that one (the builder runs as
    the platform's user). Refused before git runs (``slipway_libs.git_local``)."""
    secret = tmp_path / "secret"
    secret.mkdir()
    _git(secret, "init", "-q", "-b", "main")
    (secret / "Dockerfile").write_text("FROM scratch\nCOPY token /token\n")
    (secret / "token").write_text("not for the decoy's builds\n")
    _git(secret, "add", "-A")
    _git(secret, "commit", "-q", "-m", "secret")
    decoy = repos / "decoy"
    decoy.mkdir()
    (decoy / ".git").write_text(f"gitdir: {secret / '.git'}\n")
    command = BuildRequested(
        build_id=uuid.uuid4(),
        organization_id=ORG,
        service_id=uuid.uuid4(),
        source=GitSourceSpec(url=str(decoy)),
        image_repository="test/decoy",
    )
    await _send(builder, command)
    final = await _outcome(builder, command.build_id)
    assert final.type == "builder.BuildFailed", final.data
    assert final.data["reason"] == "LOCAL_PATH_NOT_ALLOWED", final.data
