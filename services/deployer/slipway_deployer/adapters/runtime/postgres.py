"""The ``local`` runtime's PostgreSQL databases: one cluster per database service, run with this
host's PostgreSQL binaries (``/usr/lib/postgresql/<major>/bin``), no container.

How a database runs:
- ``initdb`` once (into a staging dir, renamed into place, so a crash never leaves half a
  cluster) with ``-U <name>``: the app's user is the cluster's superuser and owns the database
  ``<name>``, created on the first start. The cluster is the app's alone; being superuser lets it
  run ``COPY ... PROGRAM`` as the postgres system user, no more than a local service may do anyway.
- The password is generated once (``secrets.token_urlsafe``) and kept in a 0600 file readable by
  the deployer's user only. ``initdb --pwfile`` reads it from a short-lived 0600 copy owned by the
  server's user, removed right after: no password is ever in an argv, the environment, a record
  or a log. TCP and the unix socket both ask for it (scram-sha-256).
- The server listens on ``host`` only, on a free port chosen once and kept across restarts and
  redeploys. ``pg_ctl start -l <log>`` puts the postmaster in its own session, so it outlives the
  deployer; ``apply``/``restart`` return once a connection with the password succeeds.
- As root (initdb and postgres refuse root) every PostgreSQL command runs as the ``postgres``
  system user through ``runuser``, like the devstack; the cluster's files are owned by that user,
  and the state dir is made traversable (0711: no listing) for it. Its parents must already be
  traversable: this is checked, and a clear RUNTIME_ERROR names the dir otherwise.

Layout (keyed by service id):

    <state_dir>/<key>/db.json     DatabaseRecord (no secret), replaced atomically
    <state_dir>/<key>/password    the password, 0600, the deployer's user only
    <state_dir>/<key>/data/       PGDATA, 0700, the server's user
    <state_dir>/<key>/run/        the unix socket (none when the path would be too long)
    <state_dir>/<key>/server.log  the server's log (rotated once at start when over 8 MiB)

Adoption: everything is read from disk, so a new ``LocalDatabases`` on the same dir knows every
database; ``adopt()`` lists them and removes leftovers of an interrupted initdb. A postmaster is
recognised by ``postmaster.pid`` naming a live process working in our data dir, so a running
server is never started twice; PostgreSQL's own lock file guards the rest. One ``LocalDatabases``
per state dir at a time (operations on a database are serialised within it).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import os
import pwd
import re
import secrets
import shutil
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import asyncpg
import structlog

from slipway_deployer.adapters.runtime import _procfs as procfs
from slipway_deployer.adapters.runtime._logs import FileTail, LogHub, size
from slipway_deployer.adapters.runtime._ports import free_port
from slipway_deployer.adapters.runtime.base import (
    DatabaseConnection,
    FailureReason,
    LogLine,
    RunningState,
    RunStatus,
    RuntimeFailure,
)
from slipway_libs.process import ProcessResult, ProcessTimeout, run_process

log = structlog.get_logger(__name__)

ENGINE = "postgresql"
PG_SYSTEM_USER = "postgres"
PG_ROOT = Path("/usr/lib/postgresql")
_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}\Z")  # a plain identifier: no quoting surprises
_SUN_PATH = 108  # bytes of a unix socket path, NUL included: PostgreSQL refuses longer ones
_LOG_ROTATE_BYTES = 8 << 20
_STOP_TIMEOUT_S = 60
_INITDB_TIMEOUT_S = 300.0

Phase = Literal["running", "stopped", "failed"]  # what the deployer last asked, or a failure


@dataclass
class DatabaseRecord:
    service_id: str
    engine: str
    version: str  # the major the cluster was created with
    name: str  # the user (the cluster's superuser) and the database
    port: int
    phase: Phase = "stopped"
    message: str | None = None


@dataclass(frozen=True)
class _Binaries:
    bin_dir: Path
    major: str


class LocalDatabases:
    def __init__(
        self,
        state_dir: Path,
        *,
        bin_dir: Path | None = None,
        host: str = "127.0.0.1",
        start_timeout_s: float = 60,
    ) -> None:
        self._root = state_dir.absolute()
        self._bin_dir = bin_dir
        self._host = host
        self._start_timeout_s = start_timeout_s
        self._as_root = os.geteuid() == 0
        self._binaries: _Binaries | None = None
        self._reachable = False
        self._locks: dict[str, asyncio.Lock] = {}

    # -- the API -------------------------------------------------------------------------------

    async def adopt(self) -> list[str]:
        """The databases known on disk. Running servers are left as they are, stopped ones
        stay stopped until ``apply``/``restart``."""
        known = []
        for record in _load_all(self._root):
            async with self._lock(record.service_id):
                _clean_leftovers(self._dir(record.service_id))
            running = self._postmaster(record.service_id) is not None
            log.info("database.adopt", service_id=record.service_id, running=running)
            known.append(record.service_id)
        return known

    async def apply(
        self,
        service_id: str,
        *,
        engine: str = ENGINE,
        version: str | None = None,
        name: str = "app",
        environment_id: str | None = None,  # one host: no per-environment place
    ) -> DatabaseConnection:
        binaries = await self._check_request(engine, version, name)
        async with self._lock(service_id):
            await self._prepare_root()
            record = _load(self._dir(service_id))
            if record is None:
                record = self._create(service_id, name, binaries.major)
            elif record.name != name:
                raise RuntimeFailure(
                    FailureReason.INVALID_WORKLOAD,
                    f"the database was created with user and database {record.name!r}; "
                    f"{name!r} needs a new database (delete this one first)",
                )
            return await self._bring_up(record, binaries)

    async def stop(self, service_id: str) -> None:
        async with self._lock(service_id):
            record = _load(self._dir(service_id))
            if record is None:
                return
            await self._halt(service_id)
            record.phase, record.message = "stopped", None
            _save(self._dir(service_id), record)
            log.info("database.stop", service_id=service_id)

    async def restart(self, service_id: str) -> DatabaseConnection:
        async with self._lock(service_id):
            record = self._known(service_id)
            binaries = await self._resolve_binaries()
            await self._prepare_root()
            await self._halt(service_id)
            return await self._bring_up(record, binaries)

    async def delete(self, service_id: str) -> None:
        async with self._lock(service_id):
            directory = self._dir(service_id)
            if not directory.exists():
                return
            await self._halt(service_id)
            try:
                shutil.rmtree(directory)
            except OSError as exc:
                raise RuntimeFailure(
                    FailureReason.RUNTIME_ERROR, f"could not remove {directory}: {exc}"
                ) from None
            log.info("database.delete", service_id=service_id)

    async def status(self, service_id: str) -> RunningState:
        record = self._known(service_id)
        if self._postmaster(service_id) is not None:
            return RunningState(RunStatus.RUNNING, restarts=0, urls={})
        if record.phase == "failed":
            return RunningState(RunStatus.ERROR, restarts=0, urls={}, message=record.message)
        if record.phase == "running":
            message = f"PostgreSQL exited without being asked to; see {self.log_path(service_id)}"
            return RunningState(RunStatus.ERROR, restarts=0, urls={}, message=message)
        return RunningState(RunStatus.STOPPED, restarts=0, urls={})

    async def connection(self, service_id: str) -> DatabaseConnection | None:
        record = _load(self._dir(service_id))
        return None if record is None else self._connection(record)

    def log_path(self, service_id: str) -> Path:
        return self._dir(service_id) / "server.log"

    async def logs(self, service_id: str) -> AsyncIterator[LogLine]:
        """The server's log file, from its current end."""
        path = self.log_path(service_id)
        hub = LogHub(capacity=100)
        tail = FileTail(path, "stderr", hub, max_bytes=64 << 20, offset=size(path))

        async def poll() -> None:
            while True:
                tail.poll()
                await asyncio.sleep(0.5)

        poller = asyncio.create_task(poll())
        try:
            async for line in hub.follow():
                yield line
        finally:
            poller.cancel()

    # -- checks --------------------------------------------------------------------------------

    async def _check_request(self, engine: str, version: str | None, name: str) -> _Binaries:
        if engine != ENGINE:
            raise RuntimeFailure(
                FailureReason.INVALID_WORKLOAD,
                f"the local runtime runs only {ENGINE} databases, not {engine!r}",
            )
        if not _NAME.match(name):
            raise RuntimeFailure(
                FailureReason.INVALID_WORKLOAD,
                f"invalid database name {name!r}: lowercase letters, digits and _, "
                "not starting with a digit, at most 63 characters",
            )
        binaries = await self._resolve_binaries()
        if version is not None and version.split(".")[0] != binaries.major:
            raise RuntimeFailure(
                FailureReason.INVALID_WORKLOAD,
                f"PostgreSQL {version} is not available on this host "
                f"(available: {binaries.major}, in {binaries.bin_dir})",
            )
        return binaries

    async def _resolve_binaries(self) -> _Binaries:
        if self._binaries is None:
            bin_dir = self._bin_dir or _newest_bin_dir()
            missing = [b for b in ("initdb", "pg_ctl", "postgres") if not (bin_dir / b).is_file()]
            if missing:
                raise RuntimeFailure(
                    FailureReason.RUNTIME_ERROR,
                    f"PostgreSQL binaries not found in {bin_dir} (missing: {', '.join(missing)})",
                )
            result = await self._run([str(bin_dir / "postgres"), "--version"], "postgres --version")
            found = re.search(r"\(PostgreSQL\) (\d+)", result.stdout)
            if found is None:
                raise RuntimeFailure(
                    FailureReason.RUNTIME_ERROR, f"unrecognised `postgres --version` in {bin_dir}"
                )
            self._binaries = _Binaries(bin_dir, found.group(1))
        return self._binaries

    async def _prepare_root(self) -> None:
        """The state dir exists and the server's user can traverse it (checked once)."""
        _make_dir(self._root, self._dir_mode)
        if self._reachable or not self._as_root:
            return
        probe = await self._run(
            self._as_pg(["test", "-x", str(self._root)]), "the traversal check", check=False
        )
        if probe.returncode != 0:
            raise RuntimeFailure(
                FailureReason.RUNTIME_ERROR,
                f"the {PG_SYSTEM_USER} system user cannot reach {self._root}: every parent "
                "directory must be traversable by it (o+x), or choose another state dir",
            )
        self._reachable = True

    # -- lifecycle -----------------------------------------------------------------------------

    def _create(self, service_id: str, name: str, major: str) -> DatabaseRecord:
        directory = self._dir(service_id)
        _make_dir(directory, self._dir_mode)
        if not (directory / "password").exists():
            _write_private(directory / "password", secrets.token_urlsafe(24))
        taken = {record.port for record in _load_all(self._root)}
        record = DatabaseRecord(service_id, ENGINE, major, name, free_port(taken))
        _save(directory, record)
        log.info("database.create", service_id=service_id, version=major, port=record.port)
        return record

    async def _initdb(self, record: DatabaseRecord, binaries: _Binaries) -> None:
        directory = self._dir(record.service_id)
        data = directory / "data"
        if (data / "PG_VERSION").exists():
            return
        _clean_leftovers(directory)
        staging, pwfile = directory / "data.initdb", directory / "initdb.pw"
        _make_dir(staging, 0o700)
        _write_private(pwfile, _read_password(directory))
        self._give_to_server(staging, pwfile)
        argv = [
            str(binaries.bin_dir / "initdb"),
            f"--pgdata={staging}",
            f"--username={record.name}",
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--no-locale",
        ]
        try:
            await self._run(self._as_pg(argv), "initdb", timeout_s=_INITDB_TIMEOUT_S)
        finally:
            pwfile.unlink(missing_ok=True)
        os.replace(staging, data)
        log.info("database.initdb", service_id=record.service_id, version=binaries.major)

    async def _bring_up(self, record: DatabaseRecord, binaries: _Binaries) -> DatabaseConnection:
        """initdb unless done, start the server unless it runs, wait until it accepts the
        password; the record's phase says how it went (a failure is also raised)."""
        directory = self._dir(record.service_id)
        if record.version != binaries.major:
            raise RuntimeFailure(
                FailureReason.RUNTIME_ERROR,
                f"the database was created with PostgreSQL {record.version}; "
                f"this host runs {binaries.major}",
            )
        connection = self._connection(record)
        try:
            try:
                await self._initdb(record, binaries)
                if self._postmaster(record.service_id) is None:
                    await self._start(record, binaries)
                await self._wait_ready(record, connection)
            except OSError as exc:  # our own files: a full disk, a permission changed
                raise RuntimeFailure(FailureReason.RUNTIME_ERROR, str(exc)) from None
        except RuntimeFailure as failure:
            record.phase, record.message = "failed", failure.message
            _save(directory, record)
            raise
        record.phase, record.message = "running", None
        _save(directory, record)
        log.info("database.running", service_id=record.service_id, port=record.port)
        return connection

    async def _start(self, record: DatabaseRecord, binaries: _Binaries) -> None:
        directory = self._dir(record.service_id)
        data, log_file, run_dir = directory / "data", self.log_path(record.service_id), None
        if len(os.fsencode(directory / "run" / f".s.PGSQL.{record.port}")) < _SUN_PATH:
            run_dir = directory / "run"
            _make_dir(run_dir, 0o700)
        _write_config(data, self._host, record.port, run_dir)
        _rotate(log_file)
        _write_private(log_file, "", append=True)
        self._clear_stale_locks(record.service_id)
        self._give_to_server(data / "slipway.conf", data / "pg_hba.conf", log_file)
        if run_dir is not None:
            self._give_to_server(run_dir)
        argv = [
            str(binaries.bin_dir / "pg_ctl"),
            "start",
            f"--pgdata={data}",
            f"--log={log_file}",
            "--wait",
            f"--timeout={max(1, math.ceil(self._start_timeout_s))}",
        ]
        result = await self._run(
            self._as_pg(argv), "pg_ctl start", timeout_s=self._start_timeout_s + 30, check=False
        )
        if result.returncode == 0:
            return
        if self._postmaster(record.service_id) is None:
            raise RuntimeFailure(
                FailureReason.START_FAILED,
                f"PostgreSQL failed to start; {log_file}:\n{_tail(log_file)}",
            )
        await self._halt(record.service_id)  # still recovering: not left half up behind our back
        raise RuntimeFailure(
            FailureReason.TIMEOUT,
            f"PostgreSQL did not start within {self._start_timeout_s:g} s; "
            f"{log_file}:\n{_tail(log_file)}",
        )

    def _clear_stale_locks(self, service_id: str) -> None:
        """Remove the lock files a crash leaves (postmaster.pid, the socket's): PostgreSQL refuses
        to start while the pid they name exists, be it the dead postmaster not yet reaped (a
        zombie) or a recycled pid of the server's user. Checked again just now: the lock files of
        a live postmaster of ours (written once it is in its data dir) are never removed, or it
        would shut down. The socket dir is this database's alone."""
        directory = self._dir(service_id)
        if self._postmaster(service_id) is None:
            (directory / "data" / "postmaster.pid").unlink(missing_ok=True)
            for stale in (directory / "run").glob(".s.PGSQL.*"):
                stale.unlink(missing_ok=True)

    async def _wait_ready(self, record: DatabaseRecord, conn: DatabaseConnection) -> None:
        """Poll until a connection with the password works, then make sure the database exists."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._start_timeout_s
        last = "no attempt"
        while True:
            remaining = deadline - loop.time()
            try:
                session = await asyncpg.connect(
                    host=conn.host,
                    port=conn.port,
                    user=conn.user,
                    password=conn.password,
                    database="postgres",  # always there; ``conn.database`` may not be yet
                    timeout=max(0.5, min(5.0, remaining)),
                    ssl=False,
                )
            except asyncpg.InvalidAuthorizationSpecificationError as exc:
                raise RuntimeFailure(
                    FailureReason.START_FAILED, f"PostgreSQL refused the stored credentials: {exc}"
                ) from None
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                try:
                    await _ensure_database(session, conn.database)
                finally:
                    await session.close()
                return
            log_file = self.log_path(record.service_id)
            if self._postmaster(record.service_id) is None:
                raise RuntimeFailure(
                    FailureReason.START_FAILED,
                    f"PostgreSQL is not running ({last}); {log_file}:\n{_tail(log_file)}",
                )
            if loop.time() >= deadline:
                raise RuntimeFailure(
                    FailureReason.TIMEOUT,
                    f"PostgreSQL did not accept connections within {self._start_timeout_s:g} s "
                    f"({last}); {log_file}:\n{_tail(log_file)}",
                )
            await asyncio.sleep(0.2)

    async def _halt(self, service_id: str) -> None:
        """Stop the server if it runs: fast (clients disconnected, a clean shutdown), immediate
        if that does not finish (crash recovery at the next start)."""
        data = self._dir(service_id) / "data"
        for mode in ("fast", "immediate"):
            if self._postmaster(service_id) is None:
                return
            bin_dir = (await self._resolve_binaries()).bin_dir
            argv = [str(bin_dir / "pg_ctl"), "stop", f"--pgdata={data}", f"--mode={mode}"]
            argv += ["--wait", f"--timeout={_STOP_TIMEOUT_S}"]
            await self._run(
                self._as_pg(argv), "pg_ctl stop", timeout_s=_STOP_TIMEOUT_S + 10, check=False
            )
        if self._postmaster(service_id) is not None:
            raise RuntimeFailure(
                FailureReason.RUNTIME_ERROR, f"PostgreSQL of {service_id!r} did not stop"
            )

    # -- helpers -------------------------------------------------------------------------------

    def _postmaster(self, service_id: str) -> int | None:
        """The pid of the postmaster serving our data dir, if one runs: the pid its lock file
        names, alive, working in that dir (a postmaster chdirs into its data dir; a recycled pid
        does not, whatever path it was started with)."""
        data = self._dir(service_id) / "data"
        pid = _pidfile_pid(data)
        try:
            ours = pid is not None and os.readlink(f"/proc/{pid}/cwd") == str(data.resolve())
        except OSError:
            return None
        return pid if ours and pid is not None and procfs.start_ticks(pid) is not None else None

    def _connection(self, record: DatabaseRecord) -> DatabaseConnection:
        password = _read_password(self._dir(record.service_id))
        return DatabaseConnection(self._host, record.port, record.name, record.name, password)

    def _known(self, service_id: str) -> DatabaseRecord:
        record = _load(self._dir(service_id))
        if record is None:
            raise RuntimeFailure(
                FailureReason.NOT_FOUND, f"no database {service_id!r} in this runtime"
            )
        return record

    def _dir(self, service_id: str) -> Path:
        digest = hashlib.sha256(service_id.encode()).hexdigest()[:10]
        return self._root / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', service_id)[:40]}-{digest}"

    @property
    def _dir_mode(self) -> int:
        # the server's user must traverse our dirs to reach its own; it cannot list them
        return 0o711 if self._as_root else 0o700

    def _as_pg(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", PG_SYSTEM_USER, "--", *argv] if self._as_root else argv

    def _give_to_server(self, *paths: Path) -> None:
        if self._as_root:
            user = _pg_user()
            for path in paths:
                os.chown(path, user.pw_uid, user.pw_gid)

    def _lock(self, service_id: str) -> asyncio.Lock:
        return self._locks.setdefault(service_id, asyncio.Lock())

    async def _run(
        self,
        argv: Sequence[str],
        what: str,
        *,
        timeout_s: float = 60.0,
        check: bool = True,
    ) -> ProcessResult:
        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "LC_ALL": "C"}
        try:
            # cwd "/": the server's user may not be allowed into ours
            result = await run_process(
                argv, env=env, cwd=Path("/"), timeout_s=timeout_s, capture_stdout=True
            )
        except ProcessTimeout as exc:
            raise RuntimeFailure(FailureReason.TIMEOUT, f"{what}: {exc}") from None
        except OSError as exc:
            raise RuntimeFailure(FailureReason.RUNTIME_ERROR, f"{what}: {exc}") from None
        if check and result.returncode != 0:
            tail = "\n".join(result.stderr_tail[-10:])
            raise RuntimeFailure(
                FailureReason.RUNTIME_ERROR, f"{what} failed (exit {result.returncode}):\n{tail}"
            )
        return result


# -- files -------------------------------------------------------------------------------------


def _write_config(data: Path, host: str, port: int, run_dir: Path | None) -> None:
    """Our settings, rewritten at every start (the state dir may have moved), included last by
    postgresql.conf so they win; pg_hba asks everyone for the password."""
    sockets = "" if run_dir is None else str(run_dir).replace("'", "''")
    _write_private(
        data / "slipway.conf",
        "# written by the slipway deployer at every start\n"
        f"listen_addresses = '{host}'\n"
        f"port = {port}\n"
        f"unix_socket_directories = '{sockets}'\n"
        "password_encryption = scram-sha-256\n",
        atomic=True,
    )
    _write_private(
        data / "pg_hba.conf",
        "# written by the slipway deployer\n"
        "local  all  all        scram-sha-256\n"
        "host   all  all  all   scram-sha-256\n",
        atomic=True,
    )
    conf = data / "postgresql.conf"
    include = "include 'slipway.conf'\n"
    if include not in conf.read_text():
        with conf.open("a") as f:
            f.write("\n" + include)


def _load(directory: Path) -> DatabaseRecord | None:
    try:
        return DatabaseRecord(**json.loads((directory / "db.json").read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _load_all(root: Path) -> list[DatabaseRecord]:
    records = (_load(state.parent) for state in sorted(root.glob("*/db.json")))
    return [record for record in records if record is not None]


def _save(directory: Path, record: DatabaseRecord) -> None:
    text = json.dumps(asdict(record), indent=1, sort_keys=True)
    _write_private(directory / "db.json", text, atomic=True)


def _pidfile_pid(data: Path) -> int | None:
    try:
        return int((data / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


def _read_password(directory: Path) -> str:
    try:
        return (directory / "password").read_text()
    except OSError:
        raise RuntimeFailure(
            FailureReason.RUNTIME_ERROR, f"the database password in {directory} is missing"
        ) from None


def _clean_leftovers(directory: Path) -> None:
    """What an interrupted initdb leaves: the staging dir, and the password copy."""
    (directory / "initdb.pw").unlink(missing_ok=True)
    shutil.rmtree(directory / "data.initdb", ignore_errors=True)


def _rotate(log_file: Path) -> None:
    with contextlib.suppress(OSError):
        if log_file.stat().st_size > _LOG_ROTATE_BYTES:
            os.replace(log_file, log_file.with_suffix(".log.1"))


def _tail(log_file: Path, lines: int = 15) -> str:
    """The server log's last lines: PostgreSQL never writes a password there."""
    try:
        with log_file.open("rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 8192))
            text = f.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _make_dir(path: Path, mode: int) -> None:
    path.mkdir(mode=mode, parents=True, exist_ok=True)
    os.chmod(path, mode)  # mkdir's mode is masked by the umask, and the dir may predate us


def _write_private(path: Path, text: str, *, atomic: bool = False, append: bool = False) -> None:
    """A 0600 file; ``atomic`` replaces it through a temporary file (old or new, never half),
    keeping the owner of the file it replaces."""
    written = path.with_name(path.name + ".tmp") if atomic else path
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    with os.fdopen(os.open(written, flags, 0o600), "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    if atomic:
        with contextlib.suppress(FileNotFoundError):
            owner = path.stat()
            os.chown(written, owner.st_uid, owner.st_gid)
        os.replace(written, path)


def _newest_bin_dir() -> Path:
    majors = sorted(
        (int(d.name) for d in PG_ROOT.glob("*") if d.name.isdigit() and (d / "bin").is_dir()),
        reverse=True,
    )
    return PG_ROOT / str(majors[0]) / "bin" if majors else PG_ROOT / "15" / "bin"


def _pg_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        raise RuntimeFailure(
            FailureReason.RUNTIME_ERROR,
            f"no {PG_SYSTEM_USER!r} system user: PostgreSQL refuses to run as root",
        ) from None


async def _ensure_database(session: asyncpg.Connection, name: str) -> None:
    if await session.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name) is None:
        with contextlib.suppress(asyncpg.DuplicateDatabaseError):  # a concurrent apply
            await session.execute(f'CREATE DATABASE "{name}"')  # name checked by _NAME
