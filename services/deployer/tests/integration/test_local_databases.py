"""The ``local`` runtime's PostgreSQL databases on the real thing: this host's PostgreSQL binaries,
real clusters, real connections with asyncpg (no devstack needed, no mocks).

Every test gets its own state dir under /tmp (traversable by the ``postgres`` system user); the
fixture's teardown stops whatever postmaster is left under it, even if the code under test is
broken, then removes the dir.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import stat
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from slipway_deployer.adapters.runtime import FailureReason, RunStatus, RuntimeFailure
from slipway_deployer.adapters.runtime.postgres import DatabaseConnection, LocalDatabases

pytestmark = pytest.mark.integration

BIN = Path("/usr/lib/postgresql/15/bin")
if not (BIN / "postgres").exists():  # the devstack needs them too: a broken machine, not a skip
    pytest.fail(f"no PostgreSQL 15 binaries in {BIN}: run `make infra-up`", pytrace=False)


def postmaster_pid(data: Path) -> int | None:
    try:
        pid = int((data / "postmaster.pid").read_text().split("\n", 1)[0])
        alive = os.readlink(f"/proc/{pid}/cwd") == str(data.resolve())
    except (OSError, ValueError):
        return None
    return pid if alive and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z" else None


def kill_postmasters(root: Path) -> None:
    """SIGQUIT (immediate shutdown) every postmaster serving a data dir under root, SIGKILL if
    it is still there after 10 s. Not a child of ours: polled."""
    for pidfile in root.rglob("postmaster.pid"):
        pid = postmaster_pid(pidfile.parent)
        if pid is None:
            continue
        os.kill(pid, signal.SIGQUIT)
        deadline = time.monotonic() + 10
        while postmaster_pid(pidfile.parent) == pid and time.monotonic() < deadline:
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            if postmaster_pid(pidfile.parent) == pid:
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def base() -> Iterator[Path]:
    """A fresh dir the postgres user can traverse (pytest's tmp_path is under a 0700 dir)."""
    path = Path(tempfile.mkdtemp(prefix="slipway-db-", dir="/tmp"))
    path.chmod(0o711)
    try:
        yield path
    finally:
        kill_postmasters(path)
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def state(base: Path) -> Path:
    return base / "state"


@pytest.fixture
def dbs(state: Path) -> LocalDatabases:
    return LocalDatabases(state, start_timeout_s=30)


def service_id() -> str:
    return str(uuid.uuid4())


def data_dir(dbs: LocalDatabases, sid: str) -> Path:
    return dbs.log_path(sid).parent / "data"


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def rows(conn: DatabaseConnection) -> list[str]:
    session = await asyncpg.connect(conn.url())
    try:
        return [r["note"] for r in await session.fetch("SELECT note FROM notes ORDER BY id")]
    finally:
        await session.close()


async def test_apply_stop_apply_restart_keep_port_password_and_data(dbs: LocalDatabases) -> None:
    sid = service_id()
    conn = await dbs.apply(sid, version="15")
    assert (conn.host, conn.user, conn.database) == ("127.0.0.1", "app", "app")
    assert conn.password not in repr(conn) and conn.password not in str(conn)
    assert conn.url() == f"postgresql://app:{conn.password}@127.0.0.1:{conn.port}/app"
    assert await dbs.connection(sid) == conn

    session = await asyncpg.connect(conn.url())
    try:
        await session.execute("CREATE TABLE notes (id serial PRIMARY KEY, note text NOT NULL)")
        await session.execute("INSERT INTO notes (note) VALUES ('kept')")
        assert await session.fetchval("SELECT current_user") == "app"
        assert await session.fetchval("SELECT current_database()") == "app"
    finally:
        await session.close()
    assert (await dbs.status(sid)).status is RunStatus.RUNNING
    assert await dbs.apply(sid) == conn  # idempotent while running

    await dbs.stop(sid)
    assert (await dbs.status(sid)).status is RunStatus.STOPPED
    assert not port_open(conn.port)
    with pytest.raises(ConnectionRefusedError):
        await asyncpg.connect(conn.url(), timeout=5)
    await dbs.stop(sid)  # idempotent

    assert await dbs.apply(sid) == conn  # same port, same password
    assert await rows(conn) == ["kept"]

    before = postmaster_pid(data_dir(dbs, sid))
    assert await dbs.restart(sid) == conn
    after = postmaster_pid(data_dir(dbs, sid))
    assert before is not None and after is not None and after != before
    assert await rows(conn) == ["kept"]
    assert "database system is ready to accept connections" in dbs.log_path(sid).read_text()
    await dbs.stop(sid)


async def test_a_new_instance_adopts_without_starting_twice(state: Path) -> None:
    running, stopped = service_id(), service_id()
    first = LocalDatabases(state, start_timeout_s=30)
    conn = await first.apply(running)
    other = await first.apply(stopped)
    await first.stop(stopped)
    pid = postmaster_pid(data_dir(first, running))
    assert pid is not None
    assert other.port != conn.port

    second = LocalDatabases(state, start_timeout_s=30)
    assert sorted(await second.adopt()) == sorted([running, stopped])
    assert (await second.status(running)).status is RunStatus.RUNNING
    assert (await second.status(stopped)).status is RunStatus.STOPPED
    assert not port_open(other.port)  # adoption does not start what was stopped
    assert await second.connection(running) == conn

    assert await second.apply(running) == conn
    assert postmaster_pid(data_dir(second, running)) == pid  # the same postmaster
    assert second.log_path(running).read_text().count("starting PostgreSQL") == 1

    assert await second.apply(stopped) == other  # brought back on its port, same password
    await second.stop(stopped)
    await second.stop(running)


async def test_delete_removes_the_data_and_is_idempotent(dbs: LocalDatabases) -> None:
    sid = service_id()
    conn = await dbs.apply(sid)
    directory = dbs.log_path(sid).parent
    assert data_dir(dbs, sid).is_dir()

    await dbs.delete(sid)
    assert not directory.exists()
    assert not port_open(conn.port)
    assert await dbs.connection(sid) is None
    with pytest.raises(RuntimeFailure) as caught:
        await dbs.status(sid)
    assert caught.value.reason is FailureReason.NOT_FOUND
    await dbs.delete(sid)  # again: nothing to do
    await dbs.stop(sid)  # unknown: nothing to do
    with pytest.raises(RuntimeFailure) as caught:
        await dbs.restart(sid)
    assert caught.value.reason is FailureReason.NOT_FOUND

    fresh = await dbs.apply(sid)  # a new database: new password, no old data
    assert fresh.password != conn.password
    with pytest.raises(asyncpg.UndefinedTableError):
        await rows(fresh)
    await dbs.delete(sid)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"engine": "mysql"}, ["postgresql", "mysql"]),
        ({"version": "17"}, ["17", "available: 15"]),
        ({"version": "14.2"}, ["14.2", "available: 15"]),
        ({"name": "Bad-Name"}, ["Bad-Name"]),
    ],
)
async def test_invalid_requests(
    dbs: LocalDatabases, state: Path, kwargs: dict[str, str], words: list[str]
) -> None:
    with pytest.raises(RuntimeFailure) as caught:
        await dbs.apply(service_id(), **kwargs)
    assert caught.value.reason is FailureReason.INVALID_WORKLOAD
    for word in words:
        assert word in caught.value.message
    assert not state.exists() or not any(state.iterdir())  # nothing created


async def test_the_name_cannot_change(dbs: LocalDatabases) -> None:
    sid = service_id()
    conn = await dbs.apply(sid, name="shop")
    assert (conn.user, conn.database) == ("shop", "shop")
    with pytest.raises(RuntimeFailure) as caught:
        await dbs.apply(sid, name="other")
    assert caught.value.reason is FailureReason.INVALID_WORKLOAD
    await dbs.stop(sid)


async def test_the_password_is_only_in_its_secret_file(dbs: LocalDatabases, state: Path) -> None:
    sid = service_id()
    conn = await dbs.apply(sid)
    with pytest.raises(asyncpg.InvalidPasswordError):  # a failed login is logged: not the password
        await asyncpg.connect(conn.url().replace(conn.password, "wrong"))
    pid = postmaster_pid(data_dir(dbs, sid))
    assert pid is not None
    for what in ("cmdline", "environ"):
        assert conn.password.encode() not in Path(f"/proc/{pid}/{what}").read_bytes()
    await dbs.stop(sid)  # the shutdown checkpoint flushes everything to the data files

    secret = password_files(state, conn.password)
    assert secret == [dbs.log_path(sid).parent / "password"]
    assert stat.S_IMODE(secret[0].stat().st_mode) == 0o600
    assert secret[0].stat().st_uid == os.geteuid()
    log = dbs.log_path(sid).read_text()
    assert "password authentication failed" in log and conn.password not in log


def password_files(root: Path, password: str) -> list[Path]:
    needle = password.encode()
    return [p for p in sorted(root.rglob("*")) if p.is_file() and needle in p.read_bytes()]


async def test_a_start_failure_is_reported_with_the_log(dbs: LocalDatabases) -> None:
    sid = service_id()
    conn = await dbs.apply(sid)
    await dbs.stop(sid)
    with socket.socket() as squatter:  # someone took the port while the database was stopped
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", conn.port))
        squatter.listen()
        with pytest.raises(RuntimeFailure) as caught:
            await dbs.apply(sid)
        assert caught.value.reason is FailureReason.START_FAILED
        assert "could not bind" in caught.value.message or "in use" in caught.value.message
        assert conn.password not in str(caught.value)
        state = await dbs.status(sid)
        assert state.status is RunStatus.ERROR and state.message == caught.value.message
    assert await dbs.apply(sid) == conn  # the port is free again
    assert (await dbs.status(sid)).status is RunStatus.RUNNING
    await dbs.stop(sid)


async def test_a_crashed_server_is_reported_then_recovered_by_apply(dbs: LocalDatabases) -> None:
    sid = service_id()
    conn = await dbs.apply(sid)
    session = await asyncpg.connect(conn.url())
    await session.execute("CREATE TABLE notes (id serial PRIMARY KEY, note text NOT NULL)")
    await session.execute("INSERT INTO notes (note) VALUES ('committed before the crash')")
    pid = postmaster_pid(data_dir(dbs, sid))
    assert pid is not None
    os.kill(pid, signal.SIGKILL)  # its lock files stay behind, and maybe a zombie
    while postmaster_pid(data_dir(dbs, sid)) == pid:
        await asyncio.sleep(0.02)
    with contextlib.suppress(Exception):
        await session.close()

    state = await dbs.status(sid)
    assert state.status is RunStatus.ERROR and "exited" in (state.message or "")
    assert await dbs.apply(sid) == conn  # crash recovery, same port and password
    assert await rows(conn) == ["committed before the crash"]
    assert (await dbs.status(sid)).status is RunStatus.RUNNING
    await dbs.stop(sid)


async def test_a_long_state_path_runs_without_a_unix_socket(base: Path) -> None:
    deep = base / ("d" * 60) / ("e" * 60)
    dbs = LocalDatabases(deep, start_timeout_s=30)
    sid = service_id()
    conn = await dbs.apply(sid)
    session = await asyncpg.connect(conn.url())
    assert await session.fetchval("SELECT 1") == 1
    await session.close()
    assert not (dbs.log_path(sid).parent / "run").exists()
    await dbs.delete(sid)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs PostgreSQL as another user")
async def test_a_state_dir_the_postgres_user_cannot_reach_is_refused(base: Path) -> None:
    hidden = base / "hidden"
    hidden.mkdir(mode=0o700)
    dbs = LocalDatabases(hidden / "state")
    with pytest.raises(RuntimeFailure) as caught:
        await dbs.apply(service_id())
    assert caught.value.reason is FailureReason.RUNTIME_ERROR
    assert "cannot reach" in caught.value.message


async def test_concurrent_applies_start_one_server(dbs: LocalDatabases) -> None:
    sid = service_id()
    first, second = await asyncio.gather(dbs.apply(sid), dbs.apply(sid))
    assert first == second
    assert dbs.log_path(sid).read_text().count("starting PostgreSQL") == 1
    await dbs.stop(sid)
