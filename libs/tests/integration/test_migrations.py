"""The migration runner against the real PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from slipway_libs.migrations import MigrationError, discover, migrate

pytestmark = pytest.mark.integration


def _write(directory: Path, name: str, sql: str) -> None:
    (directory / name).write_text(sql)


async def test_applies_in_order_once_and_records_checksums(database_factory, tmp_path) -> None:
    dsn = await database_factory("mig")
    _write(tmp_path, "0001_create.sql", "CREATE TABLE t (id int);")
    _write(tmp_path, "0002_add.sql", "ALTER TABLE t ADD COLUMN name text;")
    first = await migrate(dsn, "svc", tmp_path)
    again = await migrate(dsn, "svc", tmp_path)
    assert [m.version for m in first] == [1, 2]
    assert again == []
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT namespace, version, checksum FROM schema_migrations ORDER BY 1, 2"
        )
        assert [(r["namespace"], r["version"]) for r in rows] == [
            ("slipway_libs", 1),
            ("slipway_libs", 2),
            ("slipway_libs", 3),
            ("svc", 1),
            ("svc", 2),
        ]
        assert await conn.fetchval("SELECT count(*) FROM t") == 0
    finally:
        await conn.close()


async def test_concurrent_runs_apply_each_migration_once(database_factory, tmp_path) -> None:
    dsn = await database_factory("mig")
    _write(tmp_path, "0001_create.sql", "CREATE TABLE t (id int); SELECT pg_sleep(0.2);")
    results = await asyncio.gather(*(migrate(dsn, "svc", tmp_path) for _ in range(5)))
    assert sorted(len(r) for r in results) == [0, 0, 0, 0, 1]


async def test_an_edited_applied_migration_is_refused(database_factory, tmp_path) -> None:
    dsn = await database_factory("mig")
    _write(tmp_path, "0001_create.sql", "CREATE TABLE t (id int);")
    await migrate(dsn, "svc", tmp_path)
    _write(tmp_path, "0001_create.sql", "CREATE TABLE t (id bigint);")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        await migrate(dsn, "svc", tmp_path)


async def test_a_failing_migration_leaves_nothing_behind(database_factory, tmp_path) -> None:
    dsn = await database_factory("mig")
    _write(tmp_path, "0001_create.sql", "CREATE TABLE t (id int);")
    _write(tmp_path, "0002_broken.sql", "CREATE TABLE u (id int); SELECT no_such_function();")
    with pytest.raises(asyncpg.UndefinedFunctionError):
        await migrate(dsn, "svc", tmp_path)
    conn = await asyncpg.connect(dsn)
    try:
        assert await conn.fetchval("SELECT to_regclass('u')") is None
        assert (
            await conn.fetchval(
                "SELECT max(version) FROM schema_migrations WHERE namespace = 'svc'"
            )
            == 1
        )
    finally:
        await conn.close()


def test_badly_named_files_are_refused(tmp_path) -> None:
    _write(tmp_path, "1_create.sql", "SELECT 1;")
    with pytest.raises(MigrationError, match="bad migration file name"):
        discover("svc", tmp_path)
