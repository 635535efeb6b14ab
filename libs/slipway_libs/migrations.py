"""Forward-only SQL migrations, per service.

A migration is a file ``NNNN_description.sql`` in a directory; files apply in number order, each
in its own transaction with ``lock_timeout`` set, and are recorded in ``schema_migrations``
(namespace, version, name, checksum). A session advisory lock makes concurrent runs safe: the
second waits, then finds nothing to do. An applied file whose content changed is an error, since
migrations are never edited once released: write a new one.

Every service applies the ``slipway_libs`` namespace first (outbox and inbox tables), then its own.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import structlog

from slipway_libs import leadership
from slipway_libs.db import connect

log = structlog.get_logger(__name__)

LIBS_MIGRATIONS = Path(__file__).parent / "sql"
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 727_001  # any constant shared by all migrators of one database
_LOCK_TIMEOUT = "10s"


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    namespace: str
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(namespace: str, directory: Path) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE.match(path.name)
        if not match:
            raise MigrationError(f"bad migration file name: {path}")
        found.append(Migration(namespace, int(match[1]), match[2], path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration numbers in {directory}")
    return found


_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    namespace  text        NOT NULL,
    version    integer     NOT NULL,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (namespace, version)
)
"""


async def _applied(conn: asyncpg.Connection) -> dict[tuple[str, int], str]:
    rows = await conn.fetch("SELECT namespace, version, checksum FROM schema_migrations")
    return {(r["namespace"], r["version"]): r["checksum"] for r in rows}


async def _apply(conn: asyncpg.Connection, migration: Migration) -> None:
    async with conn.transaction():
        await conn.execute(f"SET LOCAL lock_timeout = '{_LOCK_TIMEOUT}'")
        await conn.execute(migration.sql)
        await conn.execute(
            "INSERT INTO schema_migrations (namespace, version, name, checksum)"
            " VALUES ($1, $2, $3, $4)",
            migration.namespace,
            migration.version,
            migration.name,
            migration.checksum,
        )


async def apply_migrations(
    conn: asyncpg.Connection, migrations: list[Migration]
) -> list[Migration]:
    """Apply what is missing, in order; returns what was applied now."""
    async with leadership.exclusive(conn, _LOCK_KEY):
        await conn.execute(_CREATE_TABLE)
        applied = await _applied(conn)
        done = []
        for migration in migrations:
            key = (migration.namespace, migration.version)
            if key in applied:
                if applied[key] != migration.checksum:
                    raise MigrationError(
                        f"{migration.namespace} {migration.version:04d}_{migration.name} changed "
                        "after it was applied; write a new migration instead"
                    )
                continue
            await _apply(conn, migration)
            log.info(
                "migration.applied",
                namespace=migration.namespace,
                version=migration.version,
                name=migration.name,
            )
            done.append(migration)
        return done


def service_migrations(service: str, directory: Path | None) -> list[Migration]:
    found = discover("slipway_libs", LIBS_MIGRATIONS)
    if directory is not None:
        found += discover(service, directory)
    return found


async def migrate(dsn: str, service: str, directory: Path | None) -> list[Migration]:
    conn = await connect(dsn)
    try:
        return await apply_migrations(conn, service_migrations(service, directory))
    finally:
        await conn.close()
