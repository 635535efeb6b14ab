"""The build executor: takes queued builds in order, at most ``max_parallel_builds`` at once
(across worker processes: claims are serialized in the database), and runs each one:
fetch the source at its commit, skip when the registry already has that image, else build with
buildah (chroot isolation, no daemon) and push, reporting the digest.

Invariants:
- Every build that leaves QUEUED ends in exactly one final status (SUCCEEDED, FAILED, CANCELED)
  with its event, written in the same transaction; a late or duplicate end changes nothing.
- Cancel and timeout kill the build's whole process group; nothing is left running.
- The registries a Dockerfile pulls from (``FROM``, ``COPY --from``, ``RUN --mount=from``) pass
  the egress guard before buildah runs: one on a loopback, private, link-local or metadata
  address fails the build (TARGET_NOT_ALLOWED) unless it is the platform's registry or the
  operator allow-listed it. The platform registry's credentials are in a 0600 auth file under the
  workspace (``--authfile``), never in an argv.
- A Dockerfile's ``RUN`` steps are workloads: they run as root of a user namespace mapped onto
  unprivileged host ids (``build_id_base``), without ``CAP_SYS_CHROOT``. They cannot signal or
  read (``/proc/<pid>/environ``) the platform's processes, leave their chroot, or read root's
  files (the auth file, the workspace, every service's state); buildah itself stays root.
  What a step leaves running (a daemon is in no process group of ours) is killed once this
  host runs no build.
- A worker that died mid-build leaves a RUNNING row naming its host, pid and the tools' process
  group: the next worker on that host kills the group and fails the build (``WORKER_LOST``),
  so no build stays RUNNING forever.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
import os
import re
import shutil
import signal
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import structlog

from slipway_builder.config import BuilderSettings
from slipway_builder.db import queries as q
from slipway_builder.dockerfile import UnreadableImage, pulled_images
from slipway_builder.logsink import BuildLog
from slipway_builder.registry import Registry
from slipway_builder.sources import Egress, FetchedSource, GitSource, SourceError, fetch
from slipway_contracts import EventPayload
from slipway_contracts.events import builder as ev
from slipway_libs import leadership, outbox, process, retry
from slipway_libs.crypto import Sealer
from slipway_libs.db import TRANSIENT_DB_ERRORS
from slipway_libs.egress import EgressError, EgressPolicy, TargetNotAllowed
from slipway_libs.registries import (
    RegistryCredentials,
    builds_of_another,
    check_registry,
    registry_of,
    write_authfile,
)

log = structlog.get_logger(__name__)
SOURCE = "builder"
WAKE_CHANNEL = "slipway_builds"  # notified when a build is queued
_FULL_SHA = re.compile(r"[0-9a-fA-F]{40}")
STOP_GRACE_S = 8.0  # buildah removes its working container on SIGTERM; SIGKILL leaks it
DOCKERFILE_MAX_BYTES = 1 << 20  # read whole to find the images it pulls


class BuildError(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Outcome:
    image: str
    digest: str
    commit: str
    skipped: bool


def _common(row: asyncpg.Record) -> dict[str, object]:
    return {
        "build_id": row["id"],
        "organization_id": row["organization_id"],
        "service_id": row["service_id"],
        "deployment_id": row["deployment_id"],
        "environment_id": row["environment_id"],
    }


async def publish(conn: asyncpg.Connection, row: asyncpg.Record, payload: EventPayload) -> None:
    await outbox.publish(
        conn, payload, subject=str(row["id"]), source=SOURCE, organization_id=row["organization_id"]
    )


class Executor:
    def __init__(
        self, *, pool: asyncpg.Pool, settings: BuilderSettings, sealer: Sealer | None
    ) -> None:
        self._pool = pool
        self._settings = settings
        self._sealer = sealer
        password = settings.registry_password
        credentials = RegistryCredentials.of(
            settings.registry_username, password.get_secret_value() if password else None
        )
        self._registry = Registry(
            settings.registry, tls=settings.registry_tls, credentials=credentials
        )
        self._authfile = (
            write_authfile(
                Path(settings.workspace) / ".registry" / "auth.json", settings.registry, credentials
            )
            if credentials is not None
            else None
        )
        self._egress = Egress(EgressPolicy.from_setting(settings.egress_allow))
        # only the platform's registry may be plain http (``--tls-verify=false`` would allow it
        # for every registry a Dockerfile pulls from): a registries.conf marks it insecure
        self._registries_conf = (
            None
            if settings.registry_tls
            else _insecure_registry_conf(Path(settings.workspace) / ".registry", settings.registry)
        )
        self._host, self._pid = socket.gethostname(), os.getpid()
        self._running: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._canceled: set[uuid.UUID] = set()
        self._wake = leadership.Wake(poll_s=0.5)

    async def run(self) -> None:
        await self.recover()
        watcher = asyncio.create_task(self._watch_cancels())
        listener = await self._pool.acquire()
        await listener.add_listener(WAKE_CHANNEL, self._wake)
        try:
            while True:
                try:
                    await self._fill_slots()
                except TRANSIENT_DB_ERRORS as exc:  # the builds running go on; claims resume later
                    log.warning("executor.claim_failed", error=repr(exc))
                await self._wake.wait()
                self._wake.clear()
        finally:
            with contextlib.suppress(Exception):
                await listener.remove_listener(WAKE_CHANNEL, self._wake)
            await self._pool.release(listener)
            watcher.cancel()
            for task in self._running.values():
                task.cancel()
            await asyncio.gather(watcher, *self._running.values(), return_exceptions=True)

    async def _fill_slots(self) -> None:
        while len(self._running) < self._settings.max_parallel_builds:
            row = await self._claim()
            if row is None:
                return
            task = asyncio.create_task(self._execute(row))
            self._running[row["id"]] = task
            task.add_done_callback(functools.partial(self._done, row["id"]))

    def _done(self, build_id: uuid.UUID, _: object = None) -> None:
        self._running.pop(build_id, None)
        self._canceled.discard(build_id)
        self._wake.set()

    async def _claim(self) -> asyncpg.Record | None:
        async with self._pool.acquire() as conn, conn.transaction():
            row = await q.claim_next(
                conn, cap=self._settings.max_parallel_builds, host=self._host, pid=self._pid
            )
            if row is not None:
                await publish(conn, row, ev.BuildStarted(**_common(row)))
            return row

    async def recover(self) -> None:
        """Fail the builds a dead worker on this host left RUNNING, and stop their tools."""
        async with self._pool.acquire() as conn, conn.transaction():
            for row in await q.running_on(conn, self._host):
                if row["worker_pid"] == self._pid or _alive(row["worker_pid"]):
                    continue
                if row["pgid"]:
                    await process.terminate_group(row["pgid"], STOP_GRACE_S)
                await self._end(
                    conn,
                    row,
                    "FAILED",
                    reason="WORKER_LOST",
                    message="The builder stopped during this build.",
                )
        await self._kill_leftovers()

    async def _kill_leftovers(self) -> None:
        """Kill the processes builds' ``RUN`` steps left running on this host (a step may start
        a daemon: it is in no process group of ours and outlives the build), but only while the
        host runs no build: every build's steps share the ids, so a running one's are not told
        apart from leftovers."""
        try:
            async with self._pool.acquire() as conn:
                if await q.any_running_on(conn, self._host):
                    return
        except Exception as exc:  # best effort (also at shutdown): the next build's end tries again
            log.warning("executor.leftovers_not_checked", error=repr(exc))
            return
        base, count = self._settings.build_id_base, self._settings.build_id_count
        killed = await asyncio.to_thread(_kill_processes_of, range(base, base + count))
        if killed:
            log.info("executor.leftovers_killed", pids=killed)

    async def _watch_cancels(self) -> None:
        while True:
            await asyncio.sleep(0.3)
            if not self._running:
                continue
            try:
                async with self._pool.acquire() as conn:
                    requested = await q.cancel_requested(conn, list(self._running))
            except TRANSIENT_DB_ERRORS as exc:
                log.warning("executor.cancel_watch_failed", error=repr(exc))
                continue
            for build_id in requested:
                task = self._running.get(build_id)
                if task is not None and build_id not in self._canceled:
                    # once: a second cancel would cut short the group's stop or the end's record
                    self._canceled.add(build_id)
                    task.cancel()

    async def _execute(self, row: asyncpg.Record) -> None:
        try:
            await self._execute_build(row)
        finally:
            await self._kill_leftovers()

    async def _execute_build(self, row: asyncpg.Record) -> None:
        started = time.monotonic()
        token = self._token(row)
        async with BuildLog(pool=self._pool, build=row, secrets=_forms(token)) as build_log:
            try:
                outcome = await asyncio.wait_for(
                    self._build(row, build_log, token), self._settings.build_timeout_s
                )
            except asyncio.CancelledError:
                await build_log.system("build canceled")
                await self._finish(row, "CANCELED", started)
                return
            except Exception as exc:
                reason, message = self._failure(row, exc)
                await build_log.system(message)
                await self._finish(
                    row, "FAILED", started, reason=reason, message=message, log_lines=build_log
                )
                return
            await self._finish(row, "SUCCEEDED", started, outcome=outcome)

    def _failure(self, row: asyncpg.Record, exc: Exception) -> tuple[str, str]:
        """The failed event's reason code and message for what ended the build."""
        if isinstance(exc, (TimeoutError, process.ProcessTimeout)):
            limit = self._settings.build_timeout_s
            return "TIMEOUT", f"The build took longer than {limit:.0f}s."
        if isinstance(exc, (SourceError, BuildError)):
            return str(exc.reason), exc.message
        log.exception("build.crashed", build_id=str(row["id"]))
        return "INTERNAL", f"Unexpected error: {type(exc).__name__}"

    def _token(self, row: asyncpg.Record) -> str | None:
        sealed = row["git_token_sealed"]
        if not sealed or self._sealer is None:
            return None
        return self._sealer.open(base64.b64decode(sealed), aad=row["id"].bytes).decode()

    async def _build(self, row: asyncpg.Record, build_log: BuildLog, token: str | None) -> Outcome:
        workdir = Path(self._settings.workspace) / str(row["id"])
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        try:
            return await self._build_in(row, build_log, token, workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    async def _build_in(
        self, row: asyncpg.Record, build_log: BuildLog, token: str | None, workdir: Path
    ) -> Outcome:
        spec = row["source"]
        source = GitSource(
            url=spec["url"],
            branch=spec.get("branch") or "main",
            commit=spec.get("commit"),
            root_path=spec.get("root_path") or "/",
            dockerfile_path=spec.get("dockerfile_path") or "Dockerfile",
            token=token,
        )
        commit = spec.get("commit") or ""
        if _FULL_SHA.fullmatch(commit):  # the image may exist already: no need to fetch then
            existing = await self._registry.digest(row["image_repository"], commit.lower())
            if existing is not None:
                image = self._registry.image(row["image_repository"], commit.lower())
                await build_log.system(f"{image} is already in the registry: build skipped")
                return Outcome(image, existing, commit.lower(), skipped=True)
        await build_log.system(f"fetching {spec['url']} ({spec.get('commit') or source.branch})")
        fetched = await fetch(
            source,
            into=workdir / "src",
            local_roots=self._roots(),
            max_bytes=self._settings.max_repository_bytes,
            timeout_s=self._settings.clone_timeout_s,
            egress=self._egress,
            on_line=build_log.line,
        )
        async with self._pool.acquire() as conn:
            await q.set_commit(conn, row["id"], fetched.commit)
        repository, tag = row["image_repository"], fetched.commit
        image = self._registry.image(repository, tag)
        existing = await self._registry.digest(repository, tag)
        if existing is not None:
            await build_log.system(f"{image} is already in the registry: build skipped")
            return Outcome(image, existing, fetched.commit, skipped=True)
        await self._check_pulled_images(row, fetched)
        await self._buildah(row, build_log, self._bud_args(row, image, fetched), "BUILD_FAILED")
        digest_file = workdir / "digest"
        await self._buildah(
            row,
            build_log,
            [
                "push",
                *self._auth(),
                "--digestfile",
                str(digest_file),
                image,
                f"docker://{image}",
            ],
            "PUSH_FAILED",
        )
        await self._buildah(row, build_log, ["rmi", image], None)
        return Outcome(image, digest_file.read_text().strip(), fetched.commit, skipped=False)

    def _bud_args(self, row: asyncpg.Record, image: str, fetched: FetchedSource) -> list[str]:
        args = [
            "bud",
            "--isolation",
            "chroot",
            # root of a user namespace may still chroot: into a subdirectory, then up with ``..``
            # out of the build's root (it stays an unprivileged host uid there, but could read
            # every world-readable file of the host)
            "--cap-drop",
            "CAP_SYS_CHROOT",
            *self._auth(),
            "--layers=false",
            "-f",
            str(fetched.dockerfile),
            "-t",
            image,
        ]
        for key, value in sorted(row["build_args"].items()):
            args += ["--build-arg", f"{key}={value}"]
        return [*args, str(fetched.context_dir)]

    def _auth(self) -> list[str]:
        return ["--authfile", str(self._authfile)] if self._authfile is not None else []

    async def _check_pulled_images(self, row: asyncpg.Record, fetched: FetchedSource) -> None:
        """Fail the build before buildah runs if the Dockerfile pulls from a registry the
        platform does not connect to (a name that does not resolve is left to buildah)."""
        with fetched.dockerfile.open("rb") as fh:
            raw = fh.read(DOCKERFILE_MAX_BYTES + 1)
        if len(raw) > DOCKERFILE_MAX_BYTES:
            raise BuildError("BUILD_FAILED", "The Dockerfile is larger than 1 MiB.")
        try:
            images = pulled_images(raw.decode(errors="replace"), dict(row["build_args"]))
        except UnreadableImage as exc:
            raise BuildError("TARGET_NOT_ALLOWED", f"{exc}: give the image literally") from None
        organization = str(row["organization_id"])
        for image in images:
            if builds_of_another(
                image, platform_registry=self._settings.registry, organization_id=organization
            ):
                message = f"The Dockerfile pulls {image}: another organization's build."
                raise BuildError("TARGET_NOT_ALLOWED", message)
            try:
                await check_registry(
                    registry_of(image),
                    platform_registry=self._settings.registry,
                    policy=self._egress.policy,
                    resolver=self._egress.resolver,
                )
            except TargetNotAllowed as refused:
                message = f"The Dockerfile pulls {image}: {refused.message}."
                raise BuildError("TARGET_NOT_ALLOWED", message) from None
            except EgressError:
                continue  # does not resolve: buildah's pull fails on its own
            except ValueError:
                message = f"The Dockerfile names an invalid image reference: {image!r}."
                raise BuildError("BUILD_FAILED", message) from None

    def _roots(self) -> list[Path]:
        return [Path(p) for p in self._settings.git_local_roots.split(os.pathsep) if p]

    async def _buildah(
        self, row: asyncpg.Record, build_log: BuildLog, args: list[str], failure: str | None
    ) -> None:
        argv = ["buildah", *_storage(self._settings), *args]

        async def remember(pgid: int) -> None:
            async with self._pool.acquire() as conn:
                await q.set_pgid(conn, row["id"], pgid)

        result = await process.run_process(
            argv,
            env=_buildah_env(self._registries_conf),
            on_line=build_log.line,
            timeout_s=self._settings.build_timeout_s,
            on_start=remember,
            grace_s=STOP_GRACE_S,
        )
        code = result.returncode
        if code != 0 and failure is not None:
            step = "the build" if failure == "BUILD_FAILED" else "pushing the image"
            raise BuildError(failure, f"{step} failed (exit {code}); see the build log")

    async def _finish(
        self,
        row: asyncpg.Record,
        status: str,
        started: float,
        *,
        outcome: Outcome | None = None,
        reason: str | None = None,
        message: str | None = None,
        log_lines: BuildLog | None = None,
    ) -> None:
        duration = round(time.monotonic() - started, 3)
        last_lines = list(log_lines.last_lines) if log_lines else []

        async def record() -> None:
            async with self._pool.acquire() as conn, conn.transaction():
                await self._end(
                    conn,
                    row,
                    status,
                    outcome=outcome,
                    reason=reason,
                    message=message,
                    duration=duration,
                    last_lines=last_lines,
                )

        # an end not recorded would hold a build slot until the builder restarts
        await retry.while_unreachable(
            record,
            event="build.end_not_recorded",
            backoff=retry.Backoff(0.2, 5.0),
            build_id=str(row["id"]),
        )

    async def _end(
        self,
        conn: asyncpg.Connection,
        row: asyncpg.Record,
        status: str,
        *,
        outcome: Outcome | None = None,
        reason: str | None = None,
        message: str | None = None,
        duration: float = 0.0,
        last_lines: list[str] | None = None,
    ) -> None:
        ended = await q.finish(
            conn,
            row["id"],
            status=status,
            image=outcome.image if outcome else None,
            digest=outcome.digest if outcome else None,
            skipped=outcome.skipped if outcome else None,
            reason=reason,
            message=message,
        )
        if ended is None:
            return
        common = _common(row)
        payload: EventPayload
        if status == "SUCCEEDED" and outcome is not None:
            payload = ev.BuildSucceeded(
                **common,
                image=outcome.image,
                digest=outcome.digest,
                commit=outcome.commit,
                duration_s=duration,
                skipped=outcome.skipped,
            )
        elif status == "CANCELED":
            payload = ev.BuildCanceled(**common, duration_s=duration)
        else:
            payload = ev.BuildFailed(
                **common,
                reason=reason or "FAILED",
                message=message or "",
                last_lines=last_lines or [],
                duration_s=duration,
            )
        await publish(conn, row, payload)


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_processes_of(uids: range, rounds: int = 5) -> list[int]:
    """SIGKILL every process whose real uid is in ``uids``; again while some remain (one may
    fork between the scan and its kill), a few rounds at most. The pid is held by a pidfd
    while its uid is read, so a pid reused meanwhile is never signaled."""
    killed: list[int] = []
    for _ in range(rounds):
        found = [pid for pid in _pids() if _kill_if_of(pid, uids)]
        if not found:
            break
        killed += found
    return killed


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _kill_if_of(pid: int, uids: range) -> bool:
    try:
        fd = os.pidfd_open(pid)
    except OSError:  # gone
        return False
    try:
        uid = _live_uid(pid)
        if uid is None or uid not in uids:
            return False
        signal.pidfd_send_signal(fd, signal.SIGKILL)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _live_uid(pid: int) -> int | None:
    """The process's real uid; None once it is gone or a zombie (dead, its parent has yet to
    reap it: nothing to kill)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            fields = dict(line.split(":", 1) for line in status if ":" in line)
        if fields["State"].split()[0] in ("Z", "X"):
            return None
        return int(fields["Uid"].split()[0])
    except (OSError, ValueError, IndexError, KeyError):
        return None


def _forms(token: str | None) -> list[str]:
    if not token:
        return []
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    return [token, basic]


def _storage(settings: BuilderSettings) -> list[str]:
    """buildah's storage flags: a store of the builder's own (beside the configured one, which
    the devstack and the deployer share) whose default id mapping is the build range. Every
    layer is extracted there already shifted into the range (once, no copy per build), and
    buildah runs each ``RUN`` step in a user namespace with that mapping. Given to ``bud`` alone,
    the mapping makes the store copy each base image's top layer instead, and that copy keeps a
    root-owned ``/`` (containers/storage 1.43's vfs: the template copy keeps the template's root
    owner and the id shift skips ``.``): a ``RUN`` step could not write to ``/``."""
    base, count = settings.build_id_base, settings.build_id_count
    mapping = f"0:{base}:{count}"
    suffix = f"-ids{base}-{count}"  # another range is another store: its files are others'
    return [
        "--root",
        settings.buildah_root + suffix,
        "--runroot",
        settings.buildah_runroot + suffix,
        "--storage-driver",
        "vfs",
        "--userns-uid-map",
        mapping,
        "--userns-gid-map",
        mapping,
    ]


def _buildah_env(registries_conf: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TMPDIR")}
    env.setdefault("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
    if registries_conf is not None:
        env["CONTAINERS_REGISTRIES_CONF"] = str(registries_conf)
    return env


def _insecure_registry_conf(directory: Path, registry: str) -> Path:
    """A registries.conf (replacing the system's; its registries.conf.d short-name aliases still
    apply) that lets buildah reach ``registry`` over plain http, and no other registry."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / "registries.conf"
    path.write_text(f"[[registry]]\nlocation = {json.dumps(registry)}\ninsecure = true\n")
    return path
