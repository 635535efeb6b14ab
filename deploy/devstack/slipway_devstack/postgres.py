"""PostgreSQL 15: the cluster's layout, configuration, process, secrets and provisioning."""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from slipway_devstack.proc import is_root, log, pg_port, pid_alive, run, tail, write_atomic
from slipway_devstack.settings import (
    HOST,
    LOGS,
    PG_ADMIN,
    PG_BIN,
    PG_FALLBACK_ROOT,
    PG_LINK,
    PG_READY_TIMEOUT,
    PG_SYSTEM_USER,
    PRINCIPALS,
    REGISTRY_ADMIN,
    REGISTRY_SERVICES,
    REPO,
    RUN,
    SECRETS_FILE,
    SERVICES,
    STATE,
    DevstackError,
    Secrets,
)
from slipway_devstack.tools import psql_bin


def short_hash() -> str:
    return hashlib.sha256(str(REPO).encode()).hexdigest()[:12]


def as_pg_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", PG_SYSTEM_USER, "--", *cmd] if is_root() else cmd


@functools.cache
def pg_can_traverse(path: Path) -> bool:
    if not is_root():
        return True
    res = subprocess.run(as_pg_user(["test", "-x", str(path)]), cwd="/")
    return res.returncode == 0


def pg_fallback_dir() -> Path:
    if is_root():
        return PG_FALLBACK_ROOT / short_hash()
    return Path(tempfile.gettempdir()) / f"slipway-devstack-{os.getuid()}-{short_hash()}"


def pg_base() -> Path:
    """`.devstack/pg`: a real dir, or a symlink to the fallback dir if postgres can't reach it."""
    if PG_LINK.is_symlink() or PG_LINK.is_dir():
        return PG_LINK
    if pg_can_traverse(STATE):
        PG_LINK.mkdir()
    else:
        target = pg_fallback_dir() / "pg"
        target.mkdir(parents=True, exist_ok=True)
        PG_LINK.symlink_to(target)
        log(f"postgres cannot traverse {REPO}; PostgreSQL data lives in {target}")
    return PG_LINK


def pg_socket_dir() -> Path:
    """`.devstack/run`, unless the postgres user can't reach it or the socket path is too long."""
    sock_name = f".s.PGSQL.{pg_port()}"
    if pg_can_traverse(STATE) and len(str(RUN / sock_name)) < 100:
        return RUN
    return pg_fallback_dir() / "run"


def pg_log_file() -> Path:
    return LOGS / "postgres.log" if pg_can_traverse(STATE) else pg_fallback_dir() / "postgres.log"


def chown_pg(*paths: Path) -> None:
    if is_root():
        for p in paths:
            shutil.chown(p, PG_SYSTEM_USER, PG_SYSTEM_USER)


def pg_data() -> Path:
    """Resolved path: the postgres user may not be able to traverse the repo (fallback symlink)."""
    return PG_LINK.resolve() / "data"


def pg_pid() -> int | None:
    try:
        pid = int((pg_data() / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) and Path(f"/proc/{pid}/exe").resolve().name == "postgres" else None


# --- postgres: cluster


def pg_conf(sock_dir: Path) -> str:
    # max_connections: a test run keeps each module's platform (six services, each with its pool,
    # relay and listeners) until the session ends; 300 ran out once the suite had ~30 of them
    return f"""# written by deploy/devstack/devstack.py on every start
listen_addresses = '{HOST}'
port = {pg_port()}
unix_socket_directories = '{sock_dir}'
max_connections = 1000
shared_buffers = 128MB
fsync = on
synchronous_commit = on
full_page_writes = on
password_encryption = scram-sha-256
timezone = 'UTC'
log_timezone = 'UTC'
log_min_messages = warning
log_connections = off
"""


PG_HBA = f"""# written by deploy/devstack/devstack.py
local   all   {PG_ADMIN}   trust
host    all   all          127.0.0.1/32   scram-sha-256
"""


def init_pg() -> None:
    """initdb once into a staging dir, then rename it into place."""
    base = pg_base().resolve()
    data = pg_data()
    if (data / "PG_VERSION").exists():
        return
    staging = base / "data.initdb"
    shutil.rmtree(staging, ignore_errors=True)
    base.mkdir(parents=True, exist_ok=True)  # a fallback target may have been removed
    chown_pg(base)
    run(
        as_pg_user(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(staging),
                "-U",
                PG_ADMIN,
                "--no-locale",
                "-E",
                "UTF8",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ]
        ),
        what="initdb",
        cwd="/",
    )
    with open(staging / "postgresql.conf", "a") as fh:
        fh.write("\ninclude 'slipway-devstack.conf'\n")
    shutil.rmtree(data, ignore_errors=True)
    os.rename(staging, data)
    log(f"initialised PostgreSQL cluster in {data.resolve()}")


def write_pg_config(sock_dir: Path) -> None:
    data = pg_data()
    write_atomic(data / "slipway-devstack.conf", pg_conf(sock_dir), 0o600)
    write_atomic(data / "pg_hba.conf", PG_HBA, 0o600)
    chown_pg(data / "slipway-devstack.conf", data / "pg_hba.conf")


def start_pg() -> int:
    init_pg()
    sock_dir, log_file = pg_socket_dir(), pg_log_file()
    sock_dir.mkdir(parents=True, exist_ok=True)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    log_file.touch()
    chown_pg(sock_dir, log_file)
    write_pg_config(sock_dir)
    cmd = as_pg_user(
        [
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(pg_data()),
            "-l",
            str(log_file),
            "-w",
            "-t",
            str(int(PG_READY_TIMEOUT)),
            "start",
        ]
    )
    res = subprocess.run(
        cmd,
        cwd="/",
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        start_new_session=True,
    )
    if res.returncode != 0:
        raise DevstackError(f"PostgreSQL failed to start; see {log_file}:\n{tail(log_file)}")
    pid = pg_pid()
    if pid is None:
        raise DevstackError(f"PostgreSQL started but postmaster.pid is unreadable; see {log_file}")
    return pid


def stop_pg() -> bool:
    if pg_pid() is None:
        return False
    run(
        as_pg_user(
            [str(PG_BIN / "pg_ctl"), "-D", str(pg_data()), "-m", "fast", "-w", "-t", "60", "stop"]
        ),
        what="pg_ctl stop",
        cwd="/",
    )
    return True


def load_secrets() -> Secrets:
    """Passwords generated once (first init) and kept in .devstack/secrets.json."""
    data: Secrets = {}
    with contextlib.suppress(OSError, ValueError):
        data = {str(k): str(v) for k, v in json.loads(SECRETS_FILE.read_text()).items()}
    changed = False
    # PostgreSQL roles, Kafka principals (hex: safe in JAAS and in the storage tool's syntax)
    keys = ("admin", *SERVICES, "kafka_admin", "kafka_controller")
    registry = (f"registry_{u}" for u in (REGISTRY_ADMIN, *REGISTRY_SERVICES))
    for key in (*keys, *(f"kafka_{p}" for p in PRINCIPALS), *registry):
        if not data.get(key):
            data[key] = secrets.token_hex(16)
            changed = True
    # application secrets of the dev platform: the internal-call token and AES-256 sealing keys
    app_secrets: dict[str, Callable[[], str]] = {
        **{f"internal_token_{p}": lambda: secrets.token_urlsafe(32) for p in PRINCIPALS},
        "identity_sealing_key": lambda: base64.b64encode(secrets.token_bytes(32)).decode(),
        "catalog_sealing_key": lambda: base64.b64encode(secrets.token_bytes(32)).decode(),
        "scheduler_sealing_key": lambda: base64.b64encode(secrets.token_bytes(32)).decode(),
    }
    for key, make in app_secrets.items():
        if not data.get(key):
            data[key] = make()
            changed = True
    if changed:
        write_atomic(SECRETS_FILE, json.dumps(data, indent=2) + "\n", 0o600)
    return data


def provisioning_sql(pw: Secrets) -> str:
    lines = [
        "\\set ON_ERROR_STOP on",
        f"ALTER ROLE {PG_ADMIN} WITH PASSWORD '{pw['admin']}';",
        "REVOKE CONNECT, TEMPORARY ON DATABASE postgres FROM PUBLIC;",
        "REVOKE CONNECT, TEMPORARY ON DATABASE template1 FROM PUBLIC;",
    ]
    for svc in SERVICES:
        name = f"slipway_{svc}"
        lines += [
            f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{name}') "
            f"THEN CREATE ROLE {name}; END IF; END $$;",
            f"ALTER ROLE {name} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
            f"NOBYPASSRLS PASSWORD '{pw[svc]}';",
            f"SELECT 'CREATE DATABASE {name} OWNER {name}' WHERE NOT EXISTS "
            f"(SELECT 1 FROM pg_database WHERE datname = '{name}') \\gexec",
            f"ALTER DATABASE {name} OWNER TO {name};",
            f"REVOKE CONNECT, TEMPORARY ON DATABASE {name} FROM PUBLIC;",
            f"GRANT CONNECT, TEMPORARY ON DATABASE {name} TO {name};",
        ]
    return "\n".join(lines) + "\n"


# Only the platform's own databases (and postgres/template1) are checked: test fixtures create
# throwaway databases through the admin role, and those are theirs to manage.
ISOLATION_CHECK = """SELECT r.rolname || ' -> ' || d.datname
FROM pg_roles r CROSS JOIN pg_database d
WHERE r.rolname = ANY(%s) AND d.datallowconn
  AND (d.datname LIKE 'slipway\\_%%' OR d.datname IN ('postgres', 'template1'))
  AND has_database_privilege(r.oid, d.oid, 'CONNECT') <> (d.datname = r.rolname);"""


def admin_socket_psql(*args: str, sql: str | None = None, what: str) -> str:
    cmd = [
        psql_bin(),
        "-X",
        "-q",
        "-A",
        "-t",
        "-h",
        str(pg_socket_dir()),
        "-p",
        str(pg_port()),
        "-U",
        PG_ADMIN,
        "-d",
        "postgres",
        *args,
    ]
    return run(
        cmd, what=what, input=sql, stdin=None if sql is not None else subprocess.DEVNULL, cwd="/"
    ).stdout


def provision_pg(pw: Secrets) -> None:
    """Idempotently create roles/databases, then verify each role reaches only its database."""
    admin_socket_psql("-f", "-", sql=provisioning_sql(pw), what="PostgreSQL provisioning")
    roles = "ARRAY[" + ",".join(f"'slipway_{s}'" for s in SERVICES) + "]"
    bad = admin_socket_psql(
        "-c", ISOLATION_CHECK % roles, what="PostgreSQL isolation check"
    ).strip()
    if bad:
        raise DevstackError(
            f"database isolation check failed (unexpected CONNECT privilege):\n{bad}"
        )


def wait_pg(pw: Secrets) -> None:
    env = dict(os.environ, PGPASSWORD=pw["admin"], PGCONNECT_TIMEOUT="3")
    url = f"postgresql://{PG_ADMIN}@{HOST}:{pg_port()}/postgres"
    deadline = time.monotonic() + PG_READY_TIMEOUT
    while True:
        res = subprocess.run(
            [psql_bin(), "-X", "-At", url, "-c", "select 1"],
            env=env,
            cwd="/",
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        if res.returncode == 0 and res.stdout.strip() == "1":
            return
        if time.monotonic() > deadline:
            raise DevstackError(
                f"PostgreSQL not answering on {HOST}:{pg_port()}: "
                f"{res.stderr.strip()}; see {pg_log_file()}"
            )
        time.sleep(0.5)
