"""Builder overhead: one build through the builder service against the same clone + buildah
build + push run directly, in one run, on the same repository; then the time the builder takes
to skip a commit that is already in the registry.

    .venv/bin/python bench/builder_overhead.py [--rounds 16] [--skips 10]

Makes a local git repository (a temporary directory) whose Dockerfile starts ``FROM`` the
devstack's base image, copies a few files, sets an ENV, does a little work in a ``RUN`` and sets
a CMD. Starts a real builder (``python -m slipway_builder run``: API, command consumer, executor,
outbox relay) on a fresh database, with its own topic prefix, allowed to build from that
directory. Then, round after round, commits a change (a new commit, so nothing is skipped) and
builds it once each way, the order alternating (direct first, then builder first, ...) so that
machine noise hits both alike:

- **direct**: ``git clone --depth 1`` (file://) + ``git checkout`` + ``buildah bud`` + ``buildah
  push --digestfile`` + ``buildah rmi`` + removing the checkout, as subprocesses, with the flags
  the executor uses (``--isolation chroot --layers=false``, vfs, the devstack's buildah storage);
- **builder**: a ``BuildRequested`` command on the builder's (prefixed) command topic, timed from
  the send to the moment ``BuildSucceeded`` reaches a consumer that was assigned and positioned on
  the build topic before anything was sent.

Then sends ``BuildRequested`` for the commit built last (new build ids), one at a time, and
times each until ``BuildSucceeded(skipped=true)``. Prints the table and writes
``bench/results/builder_overhead.md``. The builder, its database, its topics, the temporary
repository and any image left in buildah's storage are removed at the end, also on failure,
Ctrl-C or SIGTERM (the service log is kept, and named, when something failed). One thing is
not: a build the builder was running when it was stopped leaves buildah's working container
(the executor kills its tools with SIGKILL, so buildah cannot remove it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer, ConsumerRecord
from support import (
    Devstack,
    TopicTail,
    delete_prefixed,
    load_devstack,
    machine_facts,
    machine_section,
    main_alone,
    percentile,
    postgres_version,
    service_databases,
    topic_partitions,
    verdict,
)

from slipway_contracts import Envelope, new_event
from slipway_contracts.events.builder import BUILD_TOPIC
from slipway_contracts.events.deployer import BuildRequested, GitSourceSpec
from slipway_contracts.events.logs import LINES_TOPIC
from slipway_libs.kafka_access import grant, revoke
from slipway_libs.registries import RegistryCredentials, write_authfile
from slipway_libs.settings import KafkaConnection, read_env_file
from slipway_libs.testing.platform import (
    Platform,
    ServiceProcess,
    free_port,
    migrate,
    platform_env,
)

TARGET_RATIO = 1.10
TARGET_SKIP_S = 1.0
NOISY = 0.25  # other work busy on more than this share of the cores before the run
BUILD_TIMEOUT_S = 120.0
ORG = uuid.uuid4()
SERVICE = uuid.uuid4()
BUILDER_REPOSITORY = "bench/builder-overhead"
DIRECT_REPOSITORY = "bench/direct-overhead"
FINAL = {"builder.BuildSucceeded", "builder.BuildFailed", "builder.BuildCanceled"}

DOCKERFILE = """FROM @BASE@
COPY index.html app.sh /www/
COPY conf /www/conf
ENV GREETING=hello
RUN ["/bin/sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; \
cat /www/index.html /www/app.sh /www/conf/* | sha256sum > /www/sum.txt"]
EXPOSE 8080
CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]
"""


@dataclass(frozen=True)
class Params:
    rounds: int = 16  # measured builds per variant (plus one warm-up each, not counted)
    skips: int = 10


# --- the devstack's build settings -----------------------------------------------------------


@dataclass(frozen=True)
class BuildStack:
    registry: str
    base_image: str
    buildah_root: str
    buildah_runroot: str
    # the builder's registry user (the registry refuses anonymous pushes and pulls)
    registry_username: str = ""
    registry_password: str = field(default="", repr=False)

    @classmethod
    def of(cls, devstack: Devstack) -> BuildStack:
        env = {
            **(read_env_file(devstack.env_file) if devstack.env_file else {}),
            **{k: v for k, v in os.environ.items() if k.startswith("SLIPWAY_")},
        }
        if "SLIPWAY_BASE_IMAGE" not in env or "SLIPWAY_REGISTRY" not in env:
            raise RuntimeError("the devstack has no registry/base image: run `make infra-up`")
        cache = os.environ.get("SLIPWAY_CACHE_DIR", os.path.expanduser("~/.cache/slipway"))
        return cls(
            registry=env["SLIPWAY_REGISTRY"],
            base_image=env["SLIPWAY_BASE_IMAGE"],
            buildah_root=env.get("SLIPWAY_BUILDAH_ROOT", f"{cache}/buildah/root"),
            buildah_runroot=env.get("SLIPWAY_BUILDAH_RUNROOT", f"{cache}/buildah/runroot"),
            registry_username=env.get("SLIPWAY_BUILDER_REGISTRY_USERNAME", ""),
            registry_password=env.get("SLIPWAY_BUILDER_REGISTRY_PASSWORD", ""),
        )

    def registry_env(self) -> dict[str, str]:
        """The builder's registry user, for a builder process."""
        return {
            "SLIPWAY_BUILDER_REGISTRY_USERNAME": self.registry_username,
            "SLIPWAY_BUILDER_REGISTRY_PASSWORD": self.registry_password,
        }

    def registry_args(self, work: Path) -> list[str]:
        """What the executor gives buildah to reach the registry: a 0600 auth file (and, in
        ``registry_conf``, the registries.conf that lets it use plain http)."""
        if not self.registry_username:
            return ["--tls-verify=false"]
        credentials = RegistryCredentials(self.registry_username, self.registry_password)
        authfile = write_authfile(work / ".registry-auth.json", self.registry, credentials)
        return ["--authfile", str(authfile)]

    def registry_conf(self, work: Path) -> dict[str, str]:
        path = work / ".registries.conf"
        path.write_text(f'[[registry]]\nlocation = "{self.registry}"\ninsecure = true\n')
        return {"CONTAINERS_REGISTRIES_CONF": str(path)}

    def buildah(self, *args: str) -> list[str]:
        """The builder's buildah command line (``slipway_builder.adapters.buildah.Buildah.run``)."""
        return [
            "buildah",
            "--root",
            self.buildah_root,
            "--runroot",
            self.buildah_runroot,
            "--storage-driver",
            "vfs",
            *args,
        ]


def buildah_env() -> dict[str, str]:
    """What the builder gives buildah (``slipway_builder.adapters.buildah._buildah_env``)."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TMPDIR")}
    env.setdefault("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
    return env


# --- the repository ----------------------------------------------------------------------------


GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
    "GIT_TERMINAL_PROMPT": "0",
}


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=GIT_ENV
    )
    return result.stdout.strip()


def make_repo(repo: Path, base_image: str) -> None:
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "Dockerfile").write_text(DOCKERFILE.replace("@BASE@", base_image))
    (repo / "app.sh").write_text('#!/bin/sh\necho "$GREETING"\n')
    (repo / "conf").mkdir()
    (repo / "conf" / "site.conf").write_text("listen = 8080\n")
    (repo / "conf" / "extra.conf").write_text("# nothing yet\n")
    new_commit(repo, 0)


def new_commit(repo: Path, n: int) -> str:
    """Change the site and commit: a commit no image exists for yet."""
    (repo / "index.html").write_text(f"<h1>build {n}</h1>\n")
    (repo / "conf" / "build.conf").write_text(f"build = {n}\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", f"build {n}")
    return git(repo, "rev-parse", "HEAD")


# --- timelines -----------------------------------------------------------------------------------


Line = tuple[float, str]  # (wall clock, text)


@dataclass(frozen=True)
class Marks:
    """Where a build's output says it is: the wall-clock times of the first ``STEP 1/``, of
    ``COMMIT`` (the Dockerfile's steps done), of the ``Getting image source signatures`` after
    it (buildah starts writing the image: it first waits for the next whole second of the wall
    clock, 0 to 1 s, the same for both variants), of ``Successfully tagged`` (bud done) and of
    the push's last ``Storing signatures``."""

    step1: float
    commit: float
    writing: float
    tagged: float
    pushed: float

    @classmethod
    def of(cls, lines: Sequence[Line]) -> Marks:
        ordered = sorted(lines)

        def first(prefix: str, after: float = -math.inf) -> float:
            return next((t for t, s in ordered if s.startswith(prefix) and t >= after), math.nan)

        commit = first("COMMIT")
        tagged = first("Successfully tagged")
        pushes = [t for t, s in ordered if "Storing signatures" in s and t >= tagged]
        return cls(
            first("STEP 1/"),
            commit,
            first("Getting image source signatures", commit),
            tagged,
            pushes[-1] if pushes else math.nan,
        )

    @property
    def second_wait(self) -> float:
        """Buildah's wait for the next whole second before it writes the image."""
        return self.writing - self.commit


@dataclass
class DirectRun:
    commit: str
    total_s: float  # start → checkout removed (the same work the builder does before it reports)
    to_push_s: float  # start → push done
    start_wall: float
    end_wall: float
    steps_s: dict[str, float]  # per subprocess
    lines: list[Line]

    def stages(self) -> dict[str, float]:
        m = Marks.of(self.lines)
        return {
            "start → `STEP 1/` (source + buildah start)": m.step1 - self.start_wall,
            "`STEP 1/` → `COMMIT` (the Dockerfile's steps)": m.commit - m.step1,
            "`COMMIT` → next whole second (buildah waits)": m.second_wait,
            "→ tagged (buildah writes the image)": m.tagged - m.writing,
            "tagged → pushed (bud exits, push)": m.pushed - m.tagged,
            "pushed → reported (rmi, cleanup)": self.end_wall - m.pushed,
        }


@dataclass
class Seen:
    type: str
    data: dict[str, Any]
    occurred: float  # wall clock: the envelope's occurred_at (set in the builder's transaction)
    kafka: float  # wall clock: the Kafka record's timestamp (the relay's send)
    received: float  # monotonic: when this process got it
    received_wall: float


@dataclass
class BuilderRun:
    build_id: uuid.UUID
    commit: str
    total_s: float  # command sent → BuildSucceeded received
    sent_wall: float
    events: list[Seen]
    digest: str
    builder_cpu_s: float  # CPU time of the builder's Python process itself (not its tools)
    lines: list[Line] = field(default_factory=list)  # filled in later: log lines come after

    def event(self, kind: str) -> Seen:
        return next(e for e in self.events if e.type == f"builder.{kind}")

    def stages(self) -> dict[str, float]:
        queued, started = self.event("BuildQueued"), self.event("BuildStarted")
        done = self.event("BuildSucceeded")
        m = Marks.of(self.lines)
        return {
            "command sent → queued (Kafka, command consumer, inbox tx)": queued.occurred
            - self.sent_wall,
            "queued → started (executor wake-up, claim)": started.occurred - queued.occurred,
            "start → `STEP 1/` (source + buildah start)": m.step1 - started.occurred,
            "`STEP 1/` → `COMMIT` (the Dockerfile's steps)": m.commit - m.step1,
            "`COMMIT` → next whole second (buildah waits)": m.second_wait,
            "→ tagged (buildah writes the image)": m.tagged - m.writing,
            "tagged → pushed (bud exits, push)": m.pushed - m.tagged,
            "pushed → reported (rmi, cleanup)": done.occurred - m.pushed,
            "succeeded → on Kafka (outbox relay)": done.kafka - done.occurred,
            "on Kafka → received (this consumer)": done.received_wall - done.kafka,
        }

    def skip_stages(self) -> dict[str, float]:
        queued, started = self.event("BuildQueued"), self.event("BuildStarted")
        done = self.event("BuildSucceeded")
        fetching = next((t for t, s in sorted(self.lines) if s.startswith("fetching ")), math.nan)
        found = next((t for t, s in sorted(self.lines) if "build skipped" in s), math.nan)
        return {
            "command sent → queued (Kafka, command consumer, inbox tx)": queued.occurred
            - self.sent_wall,
            "queued → started (executor wake-up, claim)": started.occurred - queued.occurred,
            "started → fetching (build log, workdir)": fetching - started.occurred,
            "fetching → found in registry (git fetch, set commit, registry HEAD)": found - fetching,
            "found → succeeded (cleanup, finish tx)": done.occurred - found,
            "succeeded → on Kafka (outbox relay)": done.kafka - done.occurred,
            "on Kafka → received (this consumer)": done.received_wall - done.kafka,
        }


# --- CPU accounting -------------------------------------------------------------------------


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of one process itself, children not included."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return math.nan
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


# --- direct: the same tools, run by hand --------------------------------------------------------


async def tool(argv: list[str], env: dict[str, str], lines: list[Line]) -> None:
    """Run argv to completion, its output lines timestamped as they come (as the builder does)."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        start_new_session=True,  # as the executor runs its tools: a group of their own
    )

    async def pump(stream: asyncio.StreamReader | None) -> None:
        assert stream is not None
        while raw := await stream.readline():
            now = time.time()
            for text in raw.decode(errors="replace").replace("\r", "\n").split("\n"):
                if text.strip():
                    lines.append((now, text))

    try:
        await asyncio.gather(pump(proc.stdout), pump(proc.stderr))
        code = await proc.wait()
    except BaseException:
        await stop_group(proc)
        raise
    if code != 0:
        tail = "\n".join(text for _, text in lines[-15:])
        raise RuntimeError(f"`{' '.join(argv[:4])} ...` exited {code}:\n{tail}")


async def stop_group(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM first: buildah then stops its RUN step and removes its working container (on
    SIGKILL that container and its copy of the root filesystem stay in the storage)."""
    for sig, grace_s in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), grace_s)
            return


async def direct_build(stack: BuildStack, repo: Path, work: Path, commit: str) -> DirectRun:
    checkout = work / commit
    image = f"{stack.registry}/{DIRECT_REPOSITORY}:{commit}"
    digest = work / f"{commit}.digest"
    env, lines, steps = buildah_env() | stack.registry_conf(work), list[Line](), dict[str, float]()
    registry = stack.registry_args(work)
    clock = time.monotonic
    start, start_wall = clock(), time.time()
    mark = start

    def step(name: str) -> None:
        nonlocal mark
        now = clock()
        steps[name] = now - mark
        mark = now

    clone = ["git", "clone", "-q", "--depth", "1", "--branch", "main", "--no-checkout"]
    await tool([*clone, f"file://{repo}", str(checkout)], GIT_ENV, lines)
    step("git clone --depth 1")
    await tool(["git", "-C", str(checkout), "checkout", "-q", "--detach", commit], GIT_ENV, lines)
    step("git checkout")
    bud = ["bud", "--isolation", "chroot", *registry, "--layers=false"]
    dockerfile = str(checkout / "Dockerfile")
    await tool(stack.buildah(*bud, "-f", dockerfile, "-t", image, str(checkout)), env, lines)
    step("buildah bud")
    push = ["push", *registry, "--digestfile", str(digest)]
    await tool(stack.buildah(*push, image, f"docker://{image}"), env, lines)
    step("buildah push")
    pushed = clock()
    await tool(stack.buildah("rmi", image), env, lines)
    step("buildah rmi")
    shutil.rmtree(checkout)
    step("rm -r checkout")
    end, end_wall = clock(), time.time()
    if not digest.read_text().strip().startswith("sha256:"):
        raise RuntimeError(f"direct push wrote no digest for {commit}")
    return DirectRun(commit, end - start, pushed - start, start_wall, end_wall, steps, lines)


# --- builder: the service, through Kafka --------------------------------------------------------


class Watch(TopicTail):
    """Reads the builder's build topic from its current end, from before the first command is
    sent, and keeps every event by build id with the time it arrived. The log topic's position
    is taken at the same time, but its lines are read only at the end (``collect_lines``), so
    that this process does not decode them while a build is being timed."""

    poll_ms = 1000

    def __init__(self, kafka: KafkaConnection, prefix: str) -> None:
        super().__init__(
            kafka, topic_partitions(prefix, BUILD_TOPIC), topic_partitions(prefix, LINES_TOPIC)
        )
        self._events: dict[str, list[Seen]] = {}
        self._lines: dict[str, list[Line]] = {}
        self._finals: dict[str, asyncio.Future[Seen]] = {}
        self._arrived = asyncio.Event()

    async def took(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        received, wall = time.monotonic(), time.time()
        for record in records:
            self._arrived.set()
            self._take(record, received, wall)

    def _take(self, record: Any, received: float, wall: float) -> None:
        envelope = Envelope.from_json(record.value)
        build_id = str(envelope.data.get("build_id"))
        if envelope.type == "logs.LogLinesAppended":
            self._lines.setdefault(build_id, []).extend(
                (datetime.fromisoformat(line["at"]).timestamp(), line["text"])
                for line in envelope.data["lines"]
            )
            return
        seen = Seen(
            envelope.type,
            envelope.data,
            envelope.occurred_at.timestamp(),
            record.timestamp / 1000,
            received,
            wall,
        )
        self._events.setdefault(build_id, []).append(seen)
        if envelope.type in FINAL:
            final = self._final(build_id)
            if not final.done():
                final.set_result(seen)

    def _final(self, build_id: str) -> asyncio.Future[Seen]:
        return self._finals.setdefault(build_id, asyncio.get_running_loop().create_future())

    async def final(self, build_id: uuid.UUID, timeout_s: float) -> Seen:
        assert self.task is not None
        final = self._final(str(build_id))
        waited: set[asyncio.Future[Any]] = {final, self.task}
        done, _ = await asyncio.wait(waited, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        if final in done:
            return final.result()
        self.check()
        raise TimeoutError(f"no final event for build {build_id} within {timeout_s:g}s")

    def events(self, build_id: uuid.UUID) -> list[Seen]:
        return list(self._events.get(str(build_id), []))

    def lines(self, build_id: uuid.UUID) -> list[Line]:
        return list(self._lines.get(str(build_id), []))

    async def collect_lines(self, timeout_s: float = 30) -> None:
        """Read the log lines held back so far, up to the log topic's end."""
        await asyncio.sleep(1.0)  # a build's last lines are flushed just after its final event
        self.consumer.resume(*self.held)
        ends = await self.consumer.end_offsets(self.held)
        deadline = time.monotonic() + timeout_s
        while [tp for tp, end in ends.items() if await self.consumer.position(tp) < end]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the build log lines did not arrive within {timeout_s:g}s")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), 0.2)


@dataclass
class Builder:
    platform: Platform
    watch: Watch
    producer: AIOKafkaProducer
    repo: Path

    async def build(self, commit: str, *, skipped: bool = False) -> BuilderRun:
        command = BuildRequested(
            build_id=uuid.uuid4(),
            organization_id=ORG,
            service_id=SERVICE,
            deployment_id=uuid.uuid4(),
            source=GitSourceSpec(url=str(self.repo), commit=commit),
            image_repository=BUILDER_REPOSITORY,
        )
        value = new_event(
            command, subject=str(command.build_id), source="bench", organization_id=ORG
        ).to_json()
        topic, key = self.platform.prefix + command.topic, str(command.build_id).encode()
        pid = self.pid()
        own = process_cpu_s(pid)
        sent, sent_wall = time.monotonic(), time.time()
        await self.producer.send_and_wait(topic, value, key=key)
        try:
            final = await self.watch.final(command.build_id, BUILD_TIMEOUT_S)
        except TimeoutError as exc:
            raise RuntimeError(f"{exc}; the builder's log:\n{self.tail()}") from None
        total = final.received - sent
        own = process_cpu_s(pid) - own
        data = final.data
        if final.type != "builder.BuildSucceeded" or data.get("skipped") is not skipped:
            detail = {k: data.get(k) for k in ("reason", "message", "skipped", "last_lines")}
            raise RuntimeError(f"build {commit[:12]}: {final.type} {detail}")
        if data["commit"] != commit:
            raise RuntimeError(f"built {data['commit']}, asked for {commit}")
        digest = data["digest"]
        return BuilderRun(command.build_id, commit, total, sent_wall, [], digest, own)

    def pid(self) -> int:
        process = self.platform.services["builder"].process
        assert process is not None
        return process.pid

    def tail(self) -> str:
        return self.platform.services["builder"].tail()


@contextlib.asynccontextmanager
async def builder_process(
    devstack: Devstack, stack: BuildStack, dsn: str, roots: Path, workspace: Path
) -> AsyncIterator[Platform]:
    """A real builder (``python -m slipway_builder run``), migrated and ready. Like
    ``start_platform``, but its topic prefix is known before it starts, so its topics are
    deleted even when it fails to start; its log is kept (and named) when something failed."""
    platform = Platform(kafka=devstack.kafka)
    logs = Path(tempfile.mkdtemp(prefix="slipway-bench-builder-logs-"))
    port = free_port()
    platform.env = platform_env(
        devstack.kafka,
        {"builder": dsn},
        {"builder": port},
        platform.prefix,
        devstack.kafka_passwords,
    )
    await grant(devstack.kafka, platform.prefix)  # the builder's principal's ACLs
    platform.env |= {
        "SLIPWAY_GIT_LOCAL_ROOTS": str(roots),
        "SLIPWAY_BUILDER_REGISTRY": stack.registry,
        **stack.registry_env(),
        "SLIPWAY_BUILDER_BUILDAH_ROOT": stack.buildah_root,
        "SLIPWAY_BUILDER_BUILDAH_RUNROOT": stack.buildah_runroot,
        "SLIPWAY_BUILDER_WORKSPACE": str(workspace),
    }
    platform.services["builder"] = ServiceProcess("builder", port, logs / "builder.log")
    done = False
    try:
        await asyncio.to_thread(migrate, "builder", platform.env)
        platform.start("builder")
        await platform.wait_ready("builder")
        yield platform
        done = True
    finally:
        platform.stop_all()
        try:
            await revoke(devstack.kafka, platform.prefix)
            await delete_prefixed(devstack.kafka, platform.prefix)
        except Exception as exc:
            print(f"builder_overhead: topics {platform.prefix}* left: {exc!r}", file=sys.stderr)
        if done:
            shutil.rmtree(logs, ignore_errors=True)
        else:
            print(f"builder_overhead: the builder's log is in {logs}", file=sys.stderr)


@contextlib.asynccontextmanager
async def watching(
    kafka: KafkaConnection, prefix: str
) -> AsyncIterator[tuple[Watch, AIOKafkaProducer]]:
    watch = Watch(kafka, prefix)
    producer = AIOKafkaProducer(**kafka.options(), client_id="bench-deployer")
    try:
        await watch.start()
        await producer.start()
        yield watch, producer
    finally:
        await producer.stop()
        await watch.stop()


async def remove_images(stack: BuildStack, repositories: Sequence[str]) -> None:
    """Whatever a failed run left in buildah's storage under the benchmark's repositories."""
    listed = await asyncio.create_subprocess_exec(
        *stack.buildah("images", "--format", "{{.Name}}:{{.Tag}}"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=buildah_env(),
    )
    out, _ = await listed.communicate()
    names = [n for n in out.decode().split() if any(f"/{r}:" in n for r in repositories)]
    if names:
        rmi = await asyncio.create_subprocess_exec(
            *stack.buildah("rmi", *names),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            env=buildah_env(),
        )
        await rmi.wait()


# --- the run -------------------------------------------------------------------------------------


@dataclass
class Results:
    direct: list[DirectRun]
    builder: list[BuilderRun]
    skips: list[BuilderRun]


async def measure(
    params: Params, stack: BuildStack, builder: Builder, repo: Path, work: Path
) -> Results:
    results = Results([], [], [])
    commits = iter(range(1, 10_000))

    async def one(variant: str, keep: bool) -> None:
        commit = await asyncio.to_thread(new_commit, repo, next(commits))
        # a random phase against the wall clock's seconds: buildah waits for the next whole
        # second before it writes the image, and back-to-back builds would otherwise start in
        # step with the previous one's end, which hides a fixed overhead inside that wait
        await asyncio.sleep(random.uniform(0, 1))
        if variant == "direct":
            run = await direct_build(stack, repo, work, commit)
            if keep:
                results.direct.append(run)
        else:
            built = await builder.build(commit)
            if keep:
                results.builder.append(built)

    print("builder_overhead: warm-up (one build each way, not counted)...", flush=True)
    await one("direct", keep=False)
    await one("builder", keep=False)
    for index in range(params.rounds):
        order = ("direct", "builder") if index % 2 == 0 else ("builder", "direct")
        for variant in order:
            await one(variant, keep=True)
        print(
            f"builder_overhead: round {index + 1}/{params.rounds}: "
            f"direct {results.direct[-1].total_s:.2f} s, "
            f"builder {results.builder[-1].total_s:.2f} s",
            flush=True,
        )
    last = results.builder[-1].commit
    print(f"builder_overhead: {params.skips} skips of {last[:12]}...", flush=True)
    for _ in range(params.skips):
        skip = await builder.build(last, skipped=True)
        if skip.digest != results.builder[-1].digest:
            raise RuntimeError(f"skipped with {skip.digest}, built {results.builder[-1].digest}")
        results.skips.append(skip)
    await builder.watch.collect_lines()
    for run in (*results.builder, *results.skips):
        run.events = builder.watch.events(run.build_id)
        run.lines = builder.watch.lines(run.build_id)
    return results


async def run(params: Params | None = None) -> str:
    """Run the benchmark; the markdown table."""
    params = params or Params()
    devstack = load_devstack()
    stack = BuildStack.of(devstack)
    busy = await cpu_busy()
    started = datetime.now(UTC)
    print("builder_overhead: starting a builder on a fresh database...", flush=True)
    async with contextlib.AsyncExitStack() as exits:
        root = Path(tempfile.mkdtemp(prefix="slipway-bench-builder-"))
        exits.callback(shutil.rmtree, root, True)
        roots, repo, work = root / "repos", root / "repos" / "site", root / "direct"
        workspace = root / "builds"
        work.mkdir(parents=True)
        await asyncio.to_thread(make_repo, repo, stack.base_image)
        exits.push_async_callback(remove_images, stack, (BUILDER_REPOSITORY, DIRECT_REPOSITORY))
        dsns = await exits.enter_async_context(service_databases(devstack, "builder"))
        dsn = dsns["builder"]
        platform = await exits.enter_async_context(
            builder_process(devstack, stack, dsn, roots, workspace)
        )
        watch, producer = await exits.enter_async_context(watching(devstack.kafka, platform.prefix))
        builder = Builder(platform, watch, producer, repo)
        results = await measure(params, stack, builder, repo, work)
        postgres = await postgres_version(devstack)
    facts = machine_facts(devstack, postgres)
    facts["CPU busy just before the run"] = f"{busy:.0%} of all cores (2 s sample)"
    facts["buildah"] = await tool_version(["buildah", "--version"])
    facts["git"] = await tool_version(["git", "--version"])
    return render(params, stack, results, facts, started, busy)


async def cpu_busy(seconds: float = 2.0) -> float:
    """The share of all cores busy over ``seconds`` (/proc/stat; NaN elsewhere): how much other
    work the figures share the machine with."""

    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]  # total, idle + iowait

    try:
        total0, idle0 = sample()
        await asyncio.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return math.nan
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


async def tool_version(argv: list[str]) -> str:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    out, _ = await proc.communicate()
    return out.decode().strip()


# --- the table -----------------------------------------------------------------------------------


def _s(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f} s"


def _ms(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value * 1000:,.0f} ms"


def _median(values: Sequence[float]) -> float:
    clean = [v for v in values if not math.isnan(v)]
    return statistics.median(clean) if clean else math.nan


def _stage_medians(
    runs: Sequence[Any], stages: Callable[[Any], dict[str, float]]
) -> dict[str, float]:
    table: dict[str, list[float]] = {}
    for one in runs:
        for name, value in stages(one).items():
            table.setdefault(name, []).append(value)
    return {name: _median(values) for name, values in table.items()}


def render(
    params: Params,
    stack: BuildStack,
    results: Results,
    facts: dict[str, str],
    started: datetime,
    busy: float,
) -> str:
    direct = sorted(r.total_s for r in results.direct)
    to_push = sorted(r.to_push_s for r in results.direct)
    built = sorted(r.total_s for r in results.builder)
    skips = sorted(r.total_s for r in results.skips)
    med_d, med_b = statistics.median(direct), statistics.median(built)
    med_push = statistics.median(to_push)
    ratio = med_b / med_d
    steady_d = _median([_steady(r) for r in results.direct])
    steady_b = _median([_steady(r) for r in results.builder])
    steady = steady_b / steady_d
    paired = statistics.median(
        b.total_s / d.total_s for b, d in zip(results.builder, results.direct, strict=True)
    )
    outside_d = _median([_outside(r) for r in results.direct])
    outside_b = _median([_outside(r) for r in results.builder])
    waits = [Marks.of(r.lines).second_wait for r in results.direct] + [
        Marks.of(r.lines).second_wait for r in results.builder
    ]
    skip_p95 = percentile(skips, 95)
    n = params.rounds
    out = [
        "# Builder overhead: the builder service vs the same tools run directly",
        "",
        f"Run {started:%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores (nproc): the builder, "
        "Kafka, PostgreSQL, the registry, buildah and this benchmark all share them.",
        "",
    ]
    if busy > NOISY:
        out += [
            f"> **Noisy run**: other work held {busy:.0%} of the cores just before the run; "
            "the figures, the tails above all, are pessimistic and the ratio less certain.",
            "",
        ]
    out += [
        "## Results",
        "",
        "| Measure | Direct | Builder | Builder / direct | Target | Verdict |",
        "|---|---|---|---|---|---|",
        f"| Build a new commit, median of {n} | {_s(med_d)} | {_s(med_b)} | **{ratio:.2f}x** | "
        f"≤ {TARGET_RATIO:.2f}x | {verdict(ratio <= TARGET_RATIO)} |",
        f"| Build a new commit, p90 | {_s(percentile(direct, 90))} | "
        f"{_s(percentile(built, 90))} | {percentile(built, 90) / percentile(direct, 90):.2f}x "
        "| | |",
        f"| Build a new commit, min / max | {_s(direct[0])} / {_s(direct[-1])} | "
        f"{_s(built[0])} / {_s(built[-1])} | | | |",
        f"| Same, without buildah's wait for the next whole second, median | {_s(steady_d)} | "
        f"{_s(steady_b)} | **{steady:.2f}x** | ≤ {TARGET_RATIO:.2f}x | "
        f"{verdict(steady <= TARGET_RATIO)} |",
        f"| Median of the per-round ratios (paired) | | | {paired:.2f}x | | |",
        f"| Direct timed to push done only (no rmi/cleanup), median | {_s(med_push)} | | "
        f"{med_b / med_push:.2f}x | | |",
        f"| All but `buildah bud`'s own work (`STEP 1/` → tagged), median | {_s(outside_d)} | "
        f"{_s(outside_b)} | {outside_b / outside_d:.2f}x | | |",
        f"| Skip an already-built commit, p50 ({len(skips)} requests) | | "
        f"{_ms(percentile(skips, 50))} | | | |",
        f"| Skip, p95 | | {_ms(skip_p95)} | | < {TARGET_SKIP_S:g} s | "
        f"{verdict(skip_p95 < TARGET_SKIP_S)} |",
        f"| Skip, max | | {_ms(skips[-1])} | | | |",
        "",
        f"Builder overhead, median: **{_ms(med_b - med_d)}** per build (the target allows "
        f"{_ms(med_d * (TARGET_RATIO - 1))}); without buildah's wait: **{_ms(steady_b - steady_d)}"
        f"**; outside `buildah bud`'s own work: **{_ms(outside_b - outside_d)}**. Before it "
        "writes the image, `buildah bud` waits for the next whole second of the wall clock "
        f"(`COMMIT` → `Getting image source signatures`: {_ms(min(waits))} to {_ms(max(waits))} "
        "in this run), a random 0 to 1 s per build that is the same in expectation for both "
        "variants but as large as the overhead being measured: with this few builds it can "
        "swing the first ratio by several percent either way. The row without it takes that "
        "term out of both; what noise remains comes from the machine (other work, the builder's "
        "own activity competing with buildah for the 2 cores). Across runs, look at the three "
        "overhead figures together.",
        "",
    ]
    out += _where_the_time_goes(results)
    out += _how_measured(params, stack)
    out += machine_section(facts)
    return "\n".join(out)


def _steady(run: DirectRun | BuilderRun) -> float:
    """The run's time without buildah's wait for the next whole second."""
    return run.total_s - Marks.of(run.lines).second_wait


def _where_the_time_goes(results: Results) -> list[str]:
    direct = _stage_medians(results.direct, DirectRun.stages)
    builder = _stage_medians(results.builder, BuilderRun.stages)
    out = [
        "## Where the time goes (medians)",
        "",
        "Stage boundaries come from the build's own output, timestamped as it is read (by the "
        "builder for its log lines, by this benchmark for the direct run): the first `STEP 1/`, "
        "`COMMIT`, the `Getting image source signatures` after it, `Successfully tagged` (bud "
        "done), the push's last `Storing signatures`; and from the builder's events "
        "(`occurred_at`, set in its transactions; the Kafka record time, set when the outbox "
        "relay sends it). Medians of stages do not add up to the median of the totals.",
        "",
        "| Stage | Direct | Builder | Builder - direct |",
        "|---|---|---|---|",
    ]
    for name in builder:
        d = direct.get(name, 0.0)
        shown = _ms(d) if name in direct else "—"
        out.append(f"| {name} | {shown} | {_ms(builder[name])} | {_ms(builder[name] - d)} |")
    total_d = _median([r.total_s for r in results.direct])
    total_b = _median([r.total_s for r in results.builder])
    out += [
        f"| **Total** | {_ms(total_d)} | {_ms(total_b)} | {_ms(total_b - total_d)} |",
        f"| CPU time of the builder's own Python process (not its tools) | — | "
        f"{_ms(_median([r.builder_cpu_s for r in results.builder]))} | |",
        "",
        "Direct, per subprocess (median): "
        + ", ".join(
            f"{name} {_ms(_median([r.steps_s[name] for r in results.direct]))}"
            for name in results.direct[0].steps_s
        )
        + ".",
        "",
        "### Skipping an already-built commit",
        "",
        "| Stage | Median | The slowest skip |",
        "|---|---|---|",
    ]
    skips = _stage_medians(results.skips, BuilderRun.skip_stages)
    slowest = max(results.skips, key=lambda r: r.total_s)
    worst = slowest.skip_stages()
    out += [f"| {name} | {_ms(value)} | {_ms(worst[name])} |" for name, value in skips.items()]
    total_s = _median([r.total_s for r in results.skips])
    out += [f"| **Total** | {_ms(total_s)} | {_ms(slowest.total_s)} |", ""]
    return out


def _outside(run: DirectRun | BuilderRun) -> float:
    """The run's time without ``buildah bud``'s own work (``STEP 1/`` to tagged)."""
    marks = Marks.of(run.lines)
    return run.total_s - (marks.tagged - marks.step1)


def _how_measured(params: Params, stack: BuildStack) -> list[str]:
    return [
        "## How it was measured",
        "",
        "- One local git repository (temporary directory): a Dockerfile `FROM "
        f'{stack.base_image}` with two `COPY`s (4 small files), an `ENV`, a `RUN ["/bin/sh", '
        '"-c", ...]` (a 20,000-step shell loop and a checksum), `EXPOSE`, `CMD`. Each measured '
        "build is of a **new commit** (so nothing is skipped), built once each way per round.",
        f"- {params.rounds} rounds after one warm-up build each way (not counted); the variant "
        "that goes first alternates (direct in rounds 1, 3, …, builder in rounds 2, 4, …) so "
        "that machine noise hits both alike. Each build starts after an untimed random pause "
        "of 0 to 1 s, so that its phase against buildah's whole-second wait is random (back to "
        "back, each build would start in step with the end of the one before, and the wait "
        "would swallow a fixed overhead).",
        "- **Direct**: `git clone -q --depth 1 --branch main --no-checkout file://<repo>`, "
        "`git checkout --detach <commit>`, `buildah --root … --runroot … --storage-driver vfs "
        "bud --isolation chroot --tls-verify=false --layers=false -f <Dockerfile> -t "
        f"{stack.registry}/{DIRECT_REPOSITORY}:<commit> <checkout>`, `buildah push "
        "--tls-verify=false --digestfile … docker://…`, `buildah rmi`, then removing the "
        "checkout, as subprocesses (output read line by line and timestamped), timed from the "
        "first to the end of the last: the same work the builder does before it reports. "
        "(Timed to push done only, see the row above.)",
        "- **Builder**: a real builder process (`python -m slipway_builder run`: API, command "
        "consumer, executor, outbox relay; log level WARNING) on a fresh database, its own topic "
        "prefix, `SLIPWAY_GIT_LOCAL_ROOTS` set to the temporary directory, the devstack's buildah "
        "storage and registry. A `BuildRequested` (the exact commit, image repository "
        f"`{BUILDER_REPOSITORY}`) is sent on its command topic (`send_and_wait`, a producer "
        "started beforehand); the time is from just before the send to the moment "
        "`BuildSucceeded` reaches a consumer that was assigned to the build topic and positioned "
        "at its end before the first command (no group, no start-up inside the timing). The "
        "build log lines (for the stages below) are read from the log topic only after the "
        "last build, so that this process does not decode them while a build is timed.",
        f"- **Skip**: after the last measured build, {params.skips} `BuildRequested` for that same "
        "commit (new build ids), one at a time, each timed from the send to "
        "`BuildSucceeded(skipped=true)`. Percentiles are nearest-rank (with 10 samples p95 is "
        "the max).",
        "- Each builder result is checked (succeeded, right commit, skipped or not as expected, "
        "a skip reports the digest of the build it skips); each direct push must write a digest.",
        "- The builder, Kafka, PostgreSQL, the registry, buildah and this benchmark share the "
        f"machine's {os.cpu_count()} cores; the builder's idle loops (executor, relay, consumer "
        "polls) run during the direct builds too. Compare runs on the same machine only.",
        "",
    ]


# --- entry points --------------------------------------------------------------------------------


def parse_args() -> Params:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = Params()
    parser.add_argument("--rounds", type=int, default=defaults.rounds)
    parser.add_argument("--skips", type=int, default=defaults.skips)
    args = parser.parse_args()
    return Params(rounds=args.rounds, skips=args.skips)


if __name__ == "__main__":
    params = parse_args()
    main_alone("builder_overhead", lambda: run(params))
