"""Running a build: claim the next queued one, fetch its source at its commit, skip when the
registry already has that image, else build with buildah and push, reporting the digest.

Invariants:
- Every build that leaves QUEUED ends in exactly one final status (SUCCEEDED, FAILED, CANCELED)
  with its event, written in the same transaction; a late or duplicate end changes nothing.
- Cancel and timeout kill the build's whole process group; nothing is left running.
- The registries a Dockerfile pulls from (``FROM``, ``COPY --from``, ``RUN --mount=from``) pass
  the egress guard before buildah runs: one on a loopback, private, link-local or metadata
  address fails the build (TARGET_NOT_ALLOWED) unless it is the platform's registry or the
  operator allow-listed it.
- A Dockerfile's ``RUN`` steps are workloads: they run as root of a user namespace mapped onto
  unprivileged host ids (``build_id_base``, see ``adapters.buildah``), without
  ``CAP_SYS_CHROOT``. What a step leaves running (a daemon is in no process group of ours) is
  killed once this host runs no build.
- A worker that died mid-build leaves a RUNNING row naming its host, pid and the tools' process
  group: the next worker on that host kills the group and fails the build (``WORKER_LOST``),
  so no build stays RUNNING forever.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import socket
import time
import uuid
from pathlib import Path

import asyncpg
import structlog

from slipway_builder.adapters import host_processes
from slipway_builder.adapters.build_log import BuildLog
from slipway_builder.adapters.buildah import STOP_GRACE_S, Buildah
from slipway_builder.adapters.registry import Registry
from slipway_builder.adapters.sources import Egress, FetchedSource, GitSource, SourceError, fetch
from slipway_builder.config import BuilderSettings
from slipway_builder.db import queries as q
from slipway_builder.domain.builds import (
    Build,
    BuildError,
    GitCredential,
    Outcome,
    event_ids,
    is_full_commit,
    secret_forms,
)
from slipway_builder.usecases import build_events
from slipway_builder.usecases.pulled_images import check_pulled_images
from slipway_contracts.events import builder as ev
from slipway_libs import process, retry
from slipway_libs.crypto import Sealer
from slipway_libs.git_local import roots_from_setting

log = structlog.get_logger(__name__)


class Builds:
    """The builds of this host's worker process (its host and pid name the builds it runs)."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        settings: BuilderSettings,
        sealer: Sealer | None,
        registry: Registry,
        buildah: Buildah,
        egress: Egress,
    ) -> None:
        self._pool = pool
        self._settings = settings
        self._sealer = sealer
        self._registry = registry
        self._buildah = buildah
        self._egress = egress
        self._host, self._pid = socket.gethostname(), os.getpid()

    async def claim(self) -> Build | None:
        """The next queued build, now RUNNING here (None: none, or every slot is taken)."""
        async with self._pool.acquire() as conn, conn.transaction():
            build = await q.claim_next(
                conn, cap=self._settings.max_parallel_builds, host=self._host, pid=self._pid
            )
            if build is not None:
                await build_events.publish(conn, build, ev.BuildStarted(**event_ids(build)))
            return build

    async def cancels_requested(self, build_ids: list[uuid.UUID]) -> list[uuid.UUID]:
        async with self._pool.acquire() as conn:
            return await q.cancel_requested(conn, build_ids)

    async def recover(self) -> None:
        """Fail the builds a dead worker on this host left RUNNING, and stop their tools."""
        async with self._pool.acquire() as conn, conn.transaction():
            for build in await q.running_on(conn, self._host):
                if build.worker_pid == self._pid or host_processes.alive(build.worker_pid):
                    continue
                if build.pgid:
                    await process.terminate_group(build.pgid, STOP_GRACE_S)
                await build_events.end(
                    conn,
                    build,
                    "FAILED",
                    reason="WORKER_LOST",
                    message="The builder stopped during this build.",
                )
        await self._kill_leftovers()

    async def run(self, build: Build) -> None:
        """Run a claimed build to its end (cancel it by canceling this coroutine)."""
        try:
            await self._run_to_end(build)
        finally:
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
        killed = await asyncio.to_thread(
            host_processes.kill_processes_of, range(base, base + count)
        )
        if killed:
            log.info("executor.leftovers_killed", pids=killed)

    async def _run_to_end(self, build: Build) -> None:
        started = time.monotonic()
        credential = self._credential(build)
        secrets = secret_forms(credential.token, credential.ssh_key)
        async with BuildLog(pool=self._pool, build=build, secrets=secrets) as build_log:
            try:
                outcome = await asyncio.wait_for(
                    self._build(build, build_log, credential), self._settings.build_timeout_s
                )
            except asyncio.CancelledError:
                await build_log.system("build canceled")
                await self._finish(build, "CANCELED", started)
                return
            except Exception as exc:
                reason, message = self._failure(build, exc)
                await build_log.system(message)
                await self._finish(
                    build, "FAILED", started, reason=reason, message=message, log_lines=build_log
                )
                return
            await self._finish(build, "SUCCEEDED", started, outcome=outcome)

    def _failure(self, build: Build, exc: Exception) -> tuple[str, str]:
        """The failed event's reason code and message for what ended the build."""
        if isinstance(exc, (TimeoutError, process.ProcessTimeout)):
            limit = self._settings.build_timeout_s
            return "TIMEOUT", f"The build took longer than {limit:.0f}s."
        if isinstance(exc, (SourceError, BuildError)):
            return str(exc.reason), exc.message
        log.exception("build.crashed", build_id=str(build.id))
        return "INTERNAL", f"Unexpected error: {type(exc).__name__}"

    def _credential(self, build: Build) -> GitCredential:
        """The organization's credential the deployer sealed for this build, opened."""

        def opened(sealed: str | None) -> str | None:
            if not sealed or self._sealer is None:
                return None
            return self._sealer.open(base64.b64decode(sealed), aad=build.id.bytes).decode()

        return GitCredential(
            token=opened(build.git_token_sealed),
            ssh_key=opened(build.git_ssh_key_sealed),
            known_hosts=build.git_known_hosts,
        )

    async def _build(self, build: Build, build_log: BuildLog, credential: GitCredential) -> Outcome:
        workdir = Path(self._settings.workspace) / str(build.id)
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        try:
            return await self._build_in(build, build_log, credential, workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    async def _build_in(
        self, build: Build, build_log: BuildLog, credential: GitCredential, workdir: Path
    ) -> Outcome:
        spec = build.source
        commit = (spec.get("commit") or "").lower()
        if is_full_commit(commit):  # the image may exist already: no need to fetch then
            skipped = await self._already_built(build, commit, build_log)
            if skipped is not None:
                return skipped
        fetched = await self._fetch(build, build_log, credential, workdir)
        skipped = await self._already_built(build, fetched.commit, build_log)
        if skipped is not None:
            return skipped
        await check_pulled_images(
            fetched.dockerfile,
            build_args=dict(build.build_args),
            organization_id=str(build.organization_id),
            platform_registry=self._settings.registry,
            egress=self._egress,
        )
        image = self._registry.image(build.image_repository, fetched.commit)
        bud = self._buildah.bud_args(
            image,
            dockerfile=fetched.dockerfile,
            context_dir=fetched.context_dir,
            build_args=build.build_args,
        )
        await self._run_buildah(build, build_log, bud, "BUILD_FAILED")
        digest_file = workdir / "digest"
        push = self._buildah.push_args(image, digest_file=digest_file)
        await self._run_buildah(build, build_log, push, "PUSH_FAILED")
        await self._run_buildah(build, build_log, ["rmi", image], None)
        return Outcome(image, digest_file.read_text().strip(), fetched.commit, skipped=False)

    async def _already_built(
        self, build: Build, commit: str, build_log: BuildLog
    ) -> Outcome | None:
        existing = await self._registry.digest(build.image_repository, commit)
        if existing is None:
            return None
        image = self._registry.image(build.image_repository, commit)
        await build_log.system(f"{image} is already in the registry: build skipped")
        return Outcome(image, existing, commit, skipped=True)

    async def _fetch(
        self, build: Build, build_log: BuildLog, credential: GitCredential, workdir: Path
    ) -> FetchedSource:
        spec = build.source
        source = GitSource(
            url=spec["url"],
            branch=spec.get("branch") or "main",
            commit=spec.get("commit"),
            root_path=spec.get("root_path") or "/",
            dockerfile_path=spec.get("dockerfile_path") or "Dockerfile",
            token=credential.token,
            ssh_key=credential.ssh_key,
            known_hosts=credential.known_hosts,
        )
        await build_log.system(f"fetching {spec['url']} ({spec.get('commit') or source.branch})")
        fetched = await fetch(
            source,
            into=workdir / "src",
            local_roots=roots_from_setting(self._settings.git_local_roots),
            max_bytes=self._settings.max_repository_bytes,
            timeout_s=self._settings.clone_timeout_s,
            egress=self._egress,
            on_line=build_log.line,
        )
        async with self._pool.acquire() as conn:
            await q.set_commit(conn, build.id, fetched.commit)
        return fetched

    async def _run_buildah(
        self, build: Build, build_log: BuildLog, args: list[str], failure: str | None
    ) -> None:
        async def remember(pgid: int) -> None:  # the next worker kills it if this one dies
            async with self._pool.acquire() as conn:
                await q.set_pgid(conn, build.id, pgid)

        code = await self._buildah.run(args, on_line=build_log.line, on_start=remember)
        if code != 0 and failure is not None:
            step = "the build" if failure == "BUILD_FAILED" else "pushing the image"
            raise BuildError(failure, f"{step} failed (exit {code}); see the build log")

    async def _finish(
        self,
        build: Build,
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
                await build_events.end(
                    conn,
                    build,
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
            build_id=str(build.id),
        )
