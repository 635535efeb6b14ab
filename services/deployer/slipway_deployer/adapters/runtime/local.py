"""The ``local`` runtime: runs the built OCI images on this machine with buildah (no daemon, no
Docker, no podman), one long-lived ``buildah run --isolation chroot`` process per service.

How a service runs:
- ``buildah from --pull`` makes a working container from the image; the process is the image's
  entrypoint + cmd (Kubernetes rules for the ``command``/``args`` overrides), started in its own
  session (its process group id is its pid) on the host network.
- Ports: each declared port gets a free host port, kept across redeploys and restarts; ``PORT`` is
  the host port of the default port and ``PORT_<declared>`` the host port of every declared port.
  The app must listen on ``$PORT``. URLs are ``http://127.0.0.1:<host port>``.
- Environment: written to a 0600 file in the state dir, bind-mounted read-only at
  ``/.slipway/env`` and sourced by the image's ``/bin/sh`` which then ``exec``s the app, so no
  value is ever in an argv (argv is world-readable in /proc; buildah 1.28 has no ``--env-file``,
  and ``buildah run --env NAME`` without a value drops the variable). Images without ``/bin/sh``,
  or variables whose names a shell cannot export, fall back to ``buildah config --env`` on the
  working container: the values are then in that short command's argv for a few milliseconds.
  Values are never logged; the app's own output is not redacted.
- Logs: stdout/stderr are appended to files in the state dir (not pipes, so a service survives the
  deployer) and tailed into a bounded buffer fanned out to ``logs()`` subscribers. The service
  appends to them itself (bind-mounted at ``/.slipway/std{out,err}.log``, owned by its uid):
  ``buildah run`` only adds its own lines, so what a process printed just before dying is never
  lost in buildah's stdio relay (images without ``/bin/sh`` still go through it).
- Health: ``apply``/``restart`` return once the health check passes (the HTTP path answers 2xx,
  or the port accepts TCP; a workload without ports once it has stayed up ``settle_s``), else
  raise HEALTHCHECK_FAILED after ``start_timeout_s``, or CRASHED (with the last lines) if the
  process exits first. While it runs, an explicit health check is probed every ``period_s``;
  ``failure_threshold`` failures in a row restart the service.
- Redeploy (``apply`` on a known service): the new working container is prepared first, then the
  old version is stopped and its container removed, then the new one starts on the same host
  ports (stable URLs, a short downtime). A failed ``apply`` leaves the service in ERROR; rolling
  back is applying the previous workload again.
- Crashes: a supervisor task per service restarts it with exponential backoff; status WARNING while
  it crashed within ``stable_after_s``, ERROR (given up) after ``max_restarts`` crashes in a row.
- Stop: SIGTERM to the process group and to every process chrooted into the container's rootfs
  (daemons that left the group), SIGKILL after ``stop_grace_s``. Delete also removes the working
  container (``buildah rm``) and the state.
- Adoption: a record per service (pid + start time + container name, ports, argv, phase; never
  env values) is kept under the state dir. A new ``LocalRuntime`` on the same dir must call
  ``adopt()`` once before anything else (a service it has not adopted is unknown to it): a
  process still alive and ours (same start time, command line naming the container) is
  supervised again instead of started twice; a dead one is restarted (after killing whatever
  still runs chrooted in its rootfs); leftover jobs are killed and removed. Lines printed while
  no runtime was watching are not replayed.
- One live ``LocalRuntime`` per state dir (an flock); ``close()`` detaches, leaving services up.
- Jobs (``run_job``): a fresh working container, run to completion with a timeout (the group is
  killed, TIMEOUT); ``/slipway/output.json`` is read from the rootfs (no symlink followed), then the
  container is removed.
- Users: every process of a service (and of its jobs) runs as an unprivileged uid of its own
  (``workload_uid``, never root, whatever the image's ``USER`` says): root in a chroot can leave
  it, and could then read the platform's state and credentials; an unprivileged uid cannot, nor
  read another user's ``/proc/<pid>/environ``. The working container's filesystem (its own copy)
  is given to that uid, as a user-namespaced container's root owns its image's files, so images
  that write into their filesystem still work; its env file and file variables are owned by
  that uid too (0400/0600); the state dir stays 0700 root.
- Not isolation beyond that: processes share the host's network, pids and resources (the
  platform's own listeners all authenticate); no cgroup limits (the sandbox here refuses them).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import signal
import stat
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import structlog

from slipway_deployer.adapters.runtime import _logs
from slipway_deployer.adapters.runtime import _procfs as procfs
from slipway_deployer.adapters.runtime._buildah import Buildah, BuildahStorage, ImageConfig
from slipway_deployer.adapters.runtime._health import http_ok, tcp_ok
from slipway_deployer.adapters.runtime._logs import FileTail, LogHub, Stream
from slipway_deployer.adapters.runtime._ports import free_port
from slipway_deployer.adapters.runtime._state import (
    Phase,
    ServiceRecord,
    StateDir,
    shell_safe_names,
)
from slipway_deployer.adapters.runtime.base import (
    Deployed,
    FailureReason,
    JobResult,
    LogLine,
    RunningState,
    RunStatus,
    RuntimeFailure,
    Workload,
)
from slipway_libs.process import ProcessTimeout, kill_group, run_process, signal_group

log = structlog.get_logger(__name__)
_STREAMS: tuple[Stream, ...] = ("stdout", "stderr")

ENV_MOUNT = "/.slipway/env"
OUTPUT_FILE = ("slipway", "output.json")
_SHIM = f'. {ENV_MOUNT} && exec "$@"'
# A service's own output goes straight to its log files (bind-mounted, its uid's): through
# ``buildah run`` it would pass chroot isolation's stdio relay, which exits without draining, so
# the last lines of a process that printed and died at once could be lost.
_LOG_MOUNTS: dict[Stream, str] = {
    "stdout": "/.slipway/stdout.log",
    "stderr": "/.slipway/stderr.log",
}
_SERVICE_SHIM = f"{_SHIM} >>{_LOG_MOUNTS['stdout']} 2>>{_LOG_MOUNTS['stderr']}"
_CONTAINER_PREFIX = "slipway-rt-"
_EXIT_GRACE_S = 2.0  # after the start deadline: how long an exiting process has to be seen exit


@dataclass(frozen=True)
class LocalRuntimeConfig:
    host: str = "127.0.0.1"
    start_timeout_s: float = 60.0
    stop_grace_s: float = 10.0
    settle_s: float = 1.0
    max_restarts: int = 5
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    stable_after_s: float = 30.0
    log_capacity: int = 1000
    log_max_bytes: int = 8 << 20
    poll_s: float = 0.1
    output_max_bytes: int = 1 << 20
    buildah_timeout_s: float = 300.0
    # buildah and what it runs get this much less CPU priority than the deployer: starting many
    # containers must not starve the control plane (queue pickup, API) on a small machine
    nice: int = 10
    # workloads run as uid (= gid) uid_base + a hash of the service id modulo uid_count: one
    # unprivileged user per service, none of the host's own users
    uid_base: int = 200_000
    uid_count: int = 1 << 20


def workload_uid(service_id: str, cfg: LocalRuntimeConfig) -> int:
    """The unprivileged uid (and gid) a service's processes run as (stable across deploys)."""
    digest = hashlib.sha256(service_id.encode()).digest()
    return cfg.uid_base + int.from_bytes(digest[:8], "big") % cfg.uid_count


class _Handle(Protocol):
    pid: int

    async def wait(self) -> int | None: ...

    def exited(self) -> bool:
        """Whether the process has exited, checked now (not at ``wait``'s next poll)."""
        ...


class _Owned:
    """A process this runtime started: its exit code is known. ``subprocess.Popen`` rather than
    asyncio's, whose transport kills the child when collected (a service outlives the runtime)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.pid = proc.pid
        self._proc = proc

    async def wait(self) -> int | None:
        await _until(self.exited, interval_s=0.1)
        return self._proc.returncode

    def exited(self) -> bool:
        return self._proc.poll() is not None


class _Adopted:
    """A process a previous runtime started: polled, its exit code is unknown."""

    def __init__(self, pid: int, ticks: int, marker: str) -> None:
        self.pid, self._ticks, self._marker = pid, ticks, marker

    async def wait(self) -> int | None:
        await _until(self.exited, 0.25)
        return None

    def exited(self) -> bool:
        return not procfs.is_ours(self.pid, self._ticks, self._marker)


@dataclass(eq=False)
class _Service:
    record: ServiceRecord
    hub: LogHub
    status: RunStatus = RunStatus.STARTING
    handle: _Handle | None = None
    streak: int = 0  # crashes in a row
    started_at: float = 0.0  # monotonic
    supervisor: asyncio.Task[None] | None = None
    tails: list[FileTail] = field(default_factory=list)
    tail_tasks: list[asyncio.Task[None]] = field(default_factory=list)


class LocalRuntime:
    def __init__(
        self,
        state_dir: Path,
        storage: BuildahStorage,
        config: LocalRuntimeConfig | None = None,
    ) -> None:
        self._cfg = config or LocalRuntimeConfig()
        self._state = StateDir(state_dir)
        self._state.lock()
        self._buildah = Buildah(
            storage,
            timeout_s=self._cfg.buildah_timeout_s,
            nice=self._cfg.nice,
            authfile=state_dir / "registry-auth.json",  # the state dir is 0700, the deployer's
        )
        self._services: dict[str, _Service] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._job_hubs: dict[str, LogHub] = {}
        self._jobs: dict[str, RunningState] = {}

    # -- the Runtime protocol ------------------------------------------------------------------

    async def apply(self, workload: Workload) -> Deployed:
        _validate(workload)
        async with self._lock(workload.service_id):
            svc = self._services.get(workload.service_id)
            previous = svc.record.port_map if svc else {}
            record, env = await self._prepare(workload, previous)
            try:
                if svc is not None:
                    await self._retire(svc)
            except BaseException:
                await self._buildah.remove(record.container)
                raise
            svc = self._install(svc, record)
            self._write_env(record, env)
            log.info(
                "runtime.apply",
                service_id=record.service_id,
                image=record.image,
                container=record.container,
                host_ports=record.port_map,
            )
            await self._start_checked(svc)
            return _deployed(record, self._cfg.host)

    async def stop(self, service_id: str) -> None:
        async with self._lock(service_id):
            svc = self._services.get(service_id)
            if svc is None:
                return
            svc.status = RunStatus.STOPPING
            await self._halt(svc)
            self._settle(svc, RunStatus.STOPPED, "stopped", None)

    async def restart(self, service_id: str) -> None:
        async with self._lock(service_id):
            svc = self._require(service_id)
            await self._halt(svc)
            svc.streak, svc.record.restarts = 0, 0
            await self._start_checked(svc)

    async def delete(self, service_id: str) -> None:
        async with self._lock(service_id):
            svc = self._services.pop(service_id, None)
            self._jobs.pop(service_id, None)
            hub = self._job_hubs.pop(service_id, None)
            if hub is not None:
                hub.close()
            if svc is None:
                return
            await self._halt(svc)
            await self._stop_tails(svc)
            svc.hub.close()
            await self._buildah.remove(svc.record.container)
            self._state.remove(svc.record)
            log.info("runtime.deleted", service_id=service_id)

    async def status(self, service_id: str) -> RunningState:
        svc = self._services.get(service_id)
        if svc is None:
            if service_id in self._jobs:
                return self._jobs[service_id]
            raise _not_found(service_id)
        urls = _deployed(svc.record, self._cfg.host).urls
        return RunningState(self._status(svc), svc.record.restarts, urls, svc.record.message)

    async def logs(self, service_id: str) -> AsyncIterator[LogLine]:
        svc = self._services.get(service_id)
        hub = svc.hub if svc is not None else self._job_hubs.get(service_id)
        if hub is None:
            raise _not_found(service_id)
        async for line in hub.follow():
            yield line

    async def run_job(self, workload: Workload, *, timeout_s: float) -> JobResult:
        record, env = await self._prepare(workload, {}, kind="job")
        rootfs = Path(record.rootfs)
        started = time.monotonic()
        try:
            self._write_env(record, env)
            _remove_output(rootfs, workload_uid(record.service_id, self._cfg))
            code = await self._run_job_process(record, timeout_s)
            output = _read_output(rootfs, self._cfg.output_max_bytes)
        finally:
            procfs.kill_rooted(rootfs)
            await self._buildah.remove(record.container)
            self._state.remove(record)
        done = RunStatus.COMPLETED if code == 0 else RunStatus.ERROR
        self._jobs[workload.service_id] = RunningState(done, 0, {}, f"exited with code {code}")
        return JobResult(code, output, time.monotonic() - started)

    # -- lifecycle of the runtime itself -------------------------------------------------------

    async def adopt(self) -> list[str]:
        """Take over the services recorded in the state dir (see the module docstring)."""
        adopted = []
        for record in self._state.load_all():
            if record.kind == "job":
                await self._discard_job(record)
            elif record.service_id not in self._services:
                svc = _Service(record, LogHub(capacity=self._cfg.log_capacity))
                self._services[record.service_id] = svc
                await self._resume(svc)
                adopted.append(record.service_id)
        return adopted

    async def close(self) -> None:
        """Stop supervising and release the state dir; the services keep running."""
        for svc in self._services.values():
            await _cancel(svc.supervisor)
            svc.supervisor = None
            await self._stop_tails(svc)
        self._state.unlock()

    # -- preparing a working container ---------------------------------------------------------

    async def _prepare(
        self,
        workload: Workload,
        previous: dict[int, int],
        kind: Literal["service", "job"] = "service",
    ) -> tuple[ServiceRecord, dict[str, str]]:
        name = f"{_CONTAINER_PREFIX}{_safe(workload.service_id)}-{secrets.token_hex(4)}"
        container = await self._buildah.from_image(
            workload.image, name, organization_id=workload.organization_id
        )
        try:
            config = await self._buildah.image_config(container)
            rootfs = await self._buildah.mount(container)
            uid = workload_uid(workload.service_id, self._cfg)
            await asyncio.to_thread(_give_rootfs, rootfs, uid)
            _write_files(rootfs, workload.files, uid)
            ports = self._assign_ports(workload, previous)
            env = {**workload.env, **_port_env(workload, dict(ports))}
            slot = self._state.new_slot(workload.service_id, kind)
            argv = _argv(workload, config)
            run_argv = await self._run_argv(container, rootfs, argv, env, slot, uid, kind)
        except BaseException:
            await self._buildah.remove(container)
            raise
        default = workload.default_port
        record = ServiceRecord(
            slot=slot,
            service_id=workload.service_id,
            environment_id=workload.environment_id,
            name=workload.name,
            image=workload.image,
            kind=kind,
            container=container,
            rootfs=str(rootfs),
            run_argv=run_argv,
            host_ports=ports,
            default_port=default.port if default else None,
            health=workload.health,
        )
        return record, env

    async def _run_argv(
        self,
        container: str,
        rootfs: Path,
        argv: list[str],
        env: dict[str, str],
        slot: str,
        uid: int,
        kind: Literal["service", "job"],
    ) -> list[str]:
        user = f"{uid}:{uid}"
        if _has_shell(rootfs) and shell_safe_names(env):
            files = self._state.root / slot
            # a job's lines are read from its pipes (``run_process``), a service's from its files
            logs = [(files / f"{s}.log", inside) for s, inside in _LOG_MOUNTS.items()]
            shim = _SERVICE_SHIM if kind == "service" else _SHIM
            return self._buildah.run_argv(
                container,
                ["/bin/sh", "-c", shim, "slipway", *argv],
                volumes=[(files / "env", ENV_MOUNT)],
                writable=logs if kind == "service" else (),
                user=user,
            )
        if env:
            log.warning("runtime.env_in_config", container=container, names=sorted(env))
            await self._buildah.set_env(container, env)
        return self._buildah.run_argv(container, argv, user=user)

    def _write_env(self, record: ServiceRecord, env: dict[str, str]) -> None:
        if any(ENV_MOUNT in arg for arg in record.run_argv):
            self._state.write_env(record, env, owner=workload_uid(record.service_id, self._cfg))

    def _assign_ports(self, workload: Workload, previous: dict[int, int]) -> list[tuple[int, int]]:
        taken = {
            host
            for other in self._services.values()
            if other.record.service_id != workload.service_id
            for _, host in other.record.host_ports
        }
        assigned = []
        for spec in workload.ports:
            host = previous.get(spec.port)
            if host is None or host in taken:
                host = free_port(taken)
            taken.add(host)
            assigned.append((spec.port, host))
        return assigned

    # -- starting, watching, stopping ----------------------------------------------------------

    def _install(self, svc: _Service | None, record: ServiceRecord) -> _Service:
        if svc is None:
            svc = _Service(record, LogHub(capacity=self._cfg.log_capacity))
            self._services[record.service_id] = svc
        svc.record, svc.streak, svc.status = record, 0, RunStatus.STARTING
        self._state.save(record)
        return svc

    async def _retire(self, svc: _Service) -> None:
        """Stop the running version before its replacement starts (same host ports)."""
        await self._halt(svc)
        await self._buildah.remove(svc.record.container)

    async def _start_checked(self, svc: _Service) -> None:
        svc.status = RunStatus.STARTING
        try:
            await self._launch(svc)
            await self._await_healthy(svc)
        except RuntimeFailure as failure:
            await self._halt(svc)
            self._settle(svc, RunStatus.ERROR, "failed", failure.message)
            raise
        except BaseException:
            await self._halt(svc)
            self._settle(svc, RunStatus.ERROR, "failed", "interrupted while starting")
            raise
        self._settle(svc, RunStatus.RUNNING, "running", None)
        svc.supervisor = asyncio.create_task(self._supervise(svc))

    async def _launch(self, svc: _Service) -> None:
        record = svc.record
        self._state.clear_tmp(record)
        # the tails start where the files end now: a process that fails at once may have
        # written its last words before the tails exist
        offsets = self._log_sizes(record)
        try:
            proc = self._spawn(record)
        except OSError as exc:
            raise RuntimeFailure(FailureReason.START_FAILED, f"cannot start: {exc}") from None
        self._buildah.deprioritize(proc.pid)
        svc.handle, svc.started_at = _Owned(proc), time.monotonic()
        record.pid, record.start_ticks = proc.pid, procfs.start_ticks(proc.pid)
        record.phase = "running"
        self._state.save(record)
        self._ensure_tails(svc, offsets)

    def _spawn(self, record: ServiceRecord) -> subprocess.Popen[bytes]:
        """``buildah run`` in a new session, appending to the log files (fork + exec: quick);
        the files are the workload's, which appends to them itself (``_SERVICE_SHIM``)."""
        uid = workload_uid(record.service_id, self._cfg)
        with (
            open(self._state.path(record, "stdout.log"), "ab") as stdout,
            open(self._state.path(record, "stderr.log"), "ab") as stderr,
        ):
            for log_file in (stdout, stderr):
                os.fchown(log_file.fileno(), uid, uid)
                os.fchmod(log_file.fileno(), 0o600)
            return subprocess.Popen(
                record.run_argv,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                env=self._buildah.env(self._state.path(record, "tmp")),
                start_new_session=True,
            )

    async def _await_healthy(self, svc: _Service) -> None:
        assert svc.handle is not None
        health = svc.record.health
        exited = asyncio.ensure_future(svc.handle.wait())
        try:
            if health is not None and health.initial_delay_s > 0:
                await asyncio.wait({exited}, timeout=health.initial_delay_s)
            deadline = time.monotonic() + self._cfg.start_timeout_s
            while not exited.done():
                if await self._probe(svc, starting=True):
                    return
                # asked of the process itself, not of ``exited``: on a crowded machine its poll
                # may not have run yet, and a process that died must fail as the crash it is,
                # with its last lines, never as a health timeout
                if svc.handle.exited():
                    break
                if time.monotonic() > deadline:
                    # a process dying just as the time runs out (its `buildah run` still
                    # tearing down on a crowded machine) fails as the crash it is
                    done, _ = await asyncio.wait({exited}, timeout=_EXIT_GRACE_S)
                    if done:
                        break
                    raise RuntimeFailure(
                        FailureReason.HEALTHCHECK_FAILED,
                        f"not healthy within {self._cfg.start_timeout_s:g} s",
                    )
                await asyncio.wait({exited}, timeout=0.2)
            raise self._crashed(svc, await svc.handle.wait())
        finally:
            exited.cancel()

    def _crashed(self, svc: _Service, code: int | None) -> RuntimeFailure:
        self._poll_tails(svc)
        last = "\n".join(line.text for line in svc.hub.recent(10))
        return RuntimeFailure(
            FailureReason.CRASHED, f"exited with code {code} while starting; last lines:\n{last}"
        )

    async def _probe(self, svc: _Service, *, starting: bool) -> bool:
        record, health = svc.record, svc.record.health
        port = (health.port if health else None) or record.default_port
        if port is None:
            return not starting or time.monotonic() - svc.started_at >= self._cfg.settle_s
        host_port = record.port_map[port]
        timeout = health.timeout_s if health else 1.0
        if health is not None and health.type == "http":
            return await http_ok(self._cfg.host, host_port, health.path, timeout)
        return await tcp_ok(self._cfg.host, host_port, timeout)

    async def _supervise(self, svc: _Service) -> None:
        while True:
            code = await self._watch(svc)
            procfs.kill_rooted(Path(svc.record.rootfs))  # leftovers would hold the ports
            self._poll_tails(svc)
            if not await self._recover(svc, code):
                return

    async def _watch(self, svc: _Service) -> int | None:
        """Until the process exits; an explicit health check failing ``failure_threshold`` times
        in a row terminates it."""
        assert svc.handle is not None
        health = svc.record.health
        exited = asyncio.ensure_future(svc.handle.wait())
        failures = 0
        try:
            while health is not None:
                done, _ = await asyncio.wait({exited}, timeout=health.period_s)
                if done:
                    break
                failures = 0 if await self._probe(svc, starting=False) else failures + 1
                if failures >= health.failure_threshold:
                    log.warning("runtime.unhealthy", service_id=svc.record.service_id)
                    await self._terminate(svc)
                    break
            return await exited
        finally:
            exited.cancel()

    async def _recover(self, svc: _Service, code: int | None) -> bool:
        """After an exit: restart with backoff (True), or give up (False)."""
        if time.monotonic() - svc.started_at >= self._cfg.stable_after_s:
            svc.streak = 0
        svc.streak += 1
        what = "exited" if code is None else f"exited with code {code}"
        if svc.streak > self._cfg.max_restarts:
            gave_up = f"{what}; gave up after {svc.streak - 1} restarts in a row"
            self._settle(svc, RunStatus.ERROR, "failed", gave_up)
            return False
        delay = min(self._cfg.backoff_base_s * 2 ** (svc.streak - 1), self._cfg.backoff_max_s)
        log.warning("runtime.crashed", service_id=svc.record.service_id, code=code, delay_s=delay)
        svc.status, svc.record.message = RunStatus.WARNING, f"{what}; restarting in {delay:g} s"
        svc.handle = None  # nothing runs during the backoff
        await asyncio.sleep(delay)
        try:
            await self._launch(svc)
        except RuntimeFailure as failure:
            self._settle(svc, RunStatus.ERROR, "failed", failure.message)
            return False
        svc.record.restarts += 1
        svc.record.message = f"{what}; restarted"
        self._state.save(svc.record)
        return True

    async def _halt(self, svc: _Service) -> None:
        """No process of the service runs any more (the container is kept)."""
        await _cancel(svc.supervisor)
        svc.supervisor = None
        await self._terminate(svc)
        self._poll_tails(svc)
        svc.handle = None
        svc.record.pid = svc.record.start_ticks = None

    async def _terminate(self, svc: _Service) -> None:
        """SIGTERM, then SIGKILL after the grace period: the process group while its leader is
        ours, and every process chrooted into the rootfs."""
        record, rootfs = svc.record, Path(svc.record.rootfs)
        pgid = record.pid if self._leader_is_ours(record) else None
        self._signal(pgid, rootfs, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._cfg.stop_grace_s):
                await _until(lambda: not self._running(pgid, rootfs), interval_s=0.05)
        if pgid is not None:
            kill_group(pgid)
        procfs.kill_rooted(rootfs)
        if svc.handle is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await svc.handle.wait()

    def _leader_is_ours(self, record: ServiceRecord) -> bool:
        if record.pid is None or record.start_ticks is None:
            return False
        return procfs.is_ours(record.pid, record.start_ticks, record.container)

    @staticmethod
    def _signal(pgid: int | None, rootfs: Path, sig: signal.Signals) -> None:
        if pgid is not None:
            signal_group(pgid, sig)
        for pid in procfs.rooted_at(rootfs):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)

    @staticmethod
    def _running(pgid: int | None, rootfs: Path) -> bool:
        return (pgid is not None and procfs.group_alive(pgid)) or bool(procfs.rooted_at(rootfs))

    def _settle(self, svc: _Service, status: RunStatus, phase: Phase, message: str | None) -> None:
        svc.status, svc.record.phase, svc.record.message = status, phase, message
        self._state.save(svc.record)

    def _status(self, svc: _Service) -> RunStatus:
        stable = time.monotonic() - svc.started_at >= self._cfg.stable_after_s
        if svc.status is RunStatus.WARNING and svc.handle is not None and stable:
            return RunStatus.RUNNING
        return svc.status

    # -- logs ----------------------------------------------------------------------------------

    def _log_sizes(self, record: ServiceRecord) -> dict[Stream, int]:
        return {s: _logs.size(self._state.path(record, f"{s}.log")) for s in _STREAMS}

    def _ensure_tails(self, svc: _Service, offsets: Mapping[Stream, int] | None = None) -> None:
        """Follow the service's log files from ``offsets`` (by default, from their ends)."""
        if svc.tail_tasks:
            return
        start = offsets or self._log_sizes(svc.record)
        svc.tails = [
            FileTail(
                self._state.path(svc.record, f"{stream}.log"),
                stream,
                svc.hub,
                max_bytes=self._cfg.log_max_bytes,
                offset=start[stream],
            )
            for stream in _STREAMS
        ]
        svc.tail_tasks = [asyncio.create_task(t.run(self._cfg.poll_s)) for t in svc.tails]

    @staticmethod
    def _poll_tails(svc: _Service) -> None:
        for tail in svc.tails:
            tail.poll()

    async def _stop_tails(self, svc: _Service) -> None:
        self._poll_tails(svc)
        for task in svc.tail_tasks:
            await _cancel(task)
        svc.tails, svc.tail_tasks = [], []

    # -- adoption and jobs ---------------------------------------------------------------------

    async def _resume(self, svc: _Service) -> None:
        record = svc.record
        alive = self._leader_is_ours(record)
        if record.phase != "running":
            if alive:
                await self._terminate(svc)
            failed = record.phase == "failed"
            svc.status = RunStatus.ERROR if failed else RunStatus.STOPPED
            return
        self._ensure_tails(svc)
        if alive and record.pid is not None and record.start_ticks is not None:
            svc.handle = _Adopted(record.pid, record.start_ticks, record.container)
            svc.status, svc.started_at = RunStatus.RUNNING, time.monotonic()
            log.info("runtime.adopted", service_id=record.service_id, pid=record.pid)
        else:
            log.warning("runtime.found_dead", service_id=record.service_id)
            procfs.kill_rooted(Path(record.rootfs))  # an orphan spawned but never recorded
            if not await self._recover(svc, None):
                return
        svc.supervisor = asyncio.create_task(self._supervise(svc))

    async def _discard_job(self, record: ServiceRecord) -> None:
        if self._leader_is_ours(record) and record.pid is not None:
            kill_group(record.pid)
        procfs.kill_rooted(Path(record.rootfs))
        await self._buildah.remove(record.container)
        self._state.remove(record)

    async def _run_job_process(self, record: ServiceRecord, timeout_s: float) -> int:
        hub = self._hub_for_job(record.service_id)
        self._jobs[record.service_id] = RunningState(RunStatus.RUNNING, 0, {})

        async def on_line(stream: str, line: str) -> None:
            hub.publish("stderr" if stream == "stderr" else "stdout", line)

        async def on_start(pgid: int) -> None:
            self._buildah.deprioritize(pgid)
            record.pid, record.start_ticks = pgid, procfs.start_ticks(pgid)
            self._state.save(record)

        env = self._buildah.env(self._state.path(record, "tmp"))
        try:
            result = await run_process(
                record.run_argv, env=env, timeout_s=timeout_s, on_line=on_line, on_start=on_start
            )
        except ProcessTimeout:
            message = f"the job did not finish within {timeout_s:g} s"
            self._jobs[record.service_id] = RunningState(RunStatus.ERROR, 0, {}, message)
            raise RuntimeFailure(FailureReason.TIMEOUT, message) from None
        return result.returncode

    def _hub_for_job(self, service_id: str) -> LogHub:
        svc = self._services.get(service_id)
        if svc is not None:
            return svc.hub
        return self._job_hubs.setdefault(service_id, LogHub(capacity=self._cfg.log_capacity))

    # -- helpers -------------------------------------------------------------------------------

    def _lock(self, service_id: str) -> asyncio.Lock:
        return self._locks.setdefault(service_id, asyncio.Lock())

    def _require(self, service_id: str) -> _Service:
        svc = self._services.get(service_id)
        if svc is None:
            raise _not_found(service_id)
        return svc


def _validate(workload: Workload) -> None:
    declared = [p.port for p in workload.ports]
    problems = [
        "a job runs with run_job" if workload.kind == "job" else "",
        "ports must be unique" if len(set(declared)) != len(declared) else "",
        "the health port is not declared"
        if workload.health and workload.health.port not in (None, *declared)
        else "",
    ]
    if message := "; ".join(p for p in problems if p):
        raise RuntimeFailure(FailureReason.INVALID_WORKLOAD, message)


def _argv(workload: Workload, config: ImageConfig) -> list[str]:
    """Kubernetes rules: ``command`` replaces the entrypoint (and drops the image's cmd),
    ``args`` replaces the cmd."""
    if workload.command is not None:
        argv = [*workload.command, *(workload.args or [])]
    else:
        argv = [*config.entrypoint, *(config.cmd if workload.args is None else workload.args)]
    if not argv:
        raise RuntimeFailure(FailureReason.INVALID_WORKLOAD, "the image has no command to run")
    return argv


def _port_env(workload: Workload, host_ports: dict[int, int]) -> dict[str, str]:
    env = {f"PORT_{declared}": str(host) for declared, host in host_ports.items()}
    if (default := workload.default_port) is not None:
        env["PORT"] = str(host_ports[default.port])
    return env


def _deployed(record: ServiceRecord, host: str) -> Deployed:
    ports = record.port_map
    urls = {declared: f"http://{host}:{port}" for declared, port in ports.items()}
    return Deployed(record.service_id, ports, urls, record.default_port)


def _safe(service_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in service_id)[:40]


def _not_found(service_id: str) -> RuntimeFailure:
    return RuntimeFailure(FailureReason.NOT_FOUND, f"no service {service_id!r} in this runtime")


async def _until(done: Callable[[], bool], interval_s: float) -> None:
    """Poll ``done``: process state in /proc offers nothing to await."""
    while not done():  # noqa: ASYNC110
        await asyncio.sleep(interval_s)


def _has_shell(rootfs: Path) -> bool:
    return os.path.lexists(rootfs / "bin" / "sh")  # a symlink (to busybox) counts


async def _cancel(task: asyncio.Task[None] | None) -> None:
    if task is None or task.done():
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _give_rootfs(rootfs: Path, uid: int) -> None:
    """Every file of the working container's filesystem to ``uid`` (and gid), writable by its
    owner (root in a container writes whatever the modes say), symlinks never followed: the
    image cannot point the change at the host."""
    _give(str(rootfs), uid)
    for top, dirs, files in os.walk(rootfs, followlinks=False):
        for name in (*dirs, *files):
            with contextlib.suppress(FileNotFoundError):
                _give(os.path.join(top, name), uid)


def _give(path: str, uid: int) -> None:
    os.lchown(path, uid, uid)
    mode = os.lstat(path).st_mode
    if stat.S_ISDIR(mode):  # never a symlink: lstat
        os.chmod(path, stat.S_IMODE(mode) | stat.S_IRWXU)
    elif stat.S_ISREG(mode):
        os.chmod(path, stat.S_IMODE(mode) | stat.S_IRUSR | stat.S_IWUSR)


def _write_files(rootfs: Path, files: dict[str, str], uid: int | None = None) -> None:
    """File variables, written into the container's own filesystem (0600, owned by the
    workload's uid; the image's files may be replaced). Each directory is opened without
    following symlinks, so an image cannot point a path at the host: the write stays inside
    ``rootfs``."""
    for mount_path, content in files.items():
        parts = [p for p in mount_path.split("/") if p]
        if not parts or any(p in (".", "..") for p in parts):
            raise RuntimeFailure(FailureReason.INVALID_WORKLOAD, f"bad file path {mount_path!r}")
        directory = os.open(rootfs, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for part in parts[:-1]:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=directory)
                inner = os.open(
                    part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=directory
                )
                os.close(directory)
                directory = inner
            with contextlib.suppress(FileNotFoundError):
                os.unlink(parts[-1], dir_fd=directory)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
            fd = os.open(parts[-1], flags, 0o600, dir_fd=directory)
            if uid is not None:
                os.fchown(fd, uid, uid)
            with os.fdopen(fd, "w") as out:
                out.write(content)
        except OSError as exc:
            raise RuntimeFailure(
                FailureReason.INVALID_WORKLOAD,
                f"cannot write the file {mount_path}: {exc.strerror}",
            ) from None
        finally:
            os.close(directory)


def _remove_output(rootfs: Path, uid: int) -> None:
    """A job starts without an output file, in an existing directory it (its uid) can write."""
    with contextlib.suppress(OSError):
        rootfs.joinpath(*OUTPUT_FILE).unlink()
    directory = rootfs.joinpath(*OUTPUT_FILE[:-1])
    with contextlib.suppress(OSError):
        directory.mkdir(mode=0o700)
    if directory.is_dir() and not directory.is_symlink():
        os.chown(directory, uid, uid)


def _read_output(rootfs: Path, max_bytes: int) -> str | None:
    """The job's output file, read without following a symlink the job may have planted (the
    rootfs is the job's, the reader is the deployer's)."""
    directory = rootfs.joinpath(*OUTPUT_FILE[:-1])
    if directory.is_symlink() or not directory.is_dir():
        return None
    try:
        fd = os.open(directory / OUTPUT_FILE[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return None
        return f.read(max_bytes).decode(errors="replace")
