"""The git credential projection the deployer and the scheduler share, against the real
PostgreSQL: a newer version wins, an older or repeated one changes nothing, a tombstone keeps
neither the secret nor the host keys; the table is the caller's."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from slipway_contracts.events.catalog import GitCredentialChanged
from slipway_libs import git_credential_projection
from slipway_libs.testing.plugin import DatabaseFactory

pytestmark = pytest.mark.integration

TABLE = """CREATE TABLE creds (
    id uuid PRIMARY KEY, organization_id uuid NOT NULL, name text NOT NULL, kind text NOT NULL,
    host text, secret_sealed text, known_hosts text, deleted boolean NOT NULL,
    version bigint NOT NULL)"""


@pytest.fixture
async def conn(database_factory: DatabaseFactory) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(await database_factory("gitcreds"))
    await conn.execute(TABLE)
    yield conn
    await conn.close()


def changed(credential_id: uuid.UUID, version: int, **fields: object) -> GitCredentialChanged:
    base: dict[str, object] = {
        "credential_id": credential_id,
        "organization_id": uuid.UUID(int=7),
        "name": "deploy",
        "kind": "ssh_key",
        "host": "git.example.com",
        "secret_sealed": "c2VhbGVk",
        "known_hosts": "git.example.com ssh-ed25519 AAAA",
        "version": version,
    }
    return GitCredentialChanged.model_validate(base | fields)


async def row(conn: asyncpg.Connection, credential_id: uuid.UUID) -> dict[str, object]:
    found = await conn.fetchrow(
        "SELECT name, secret_sealed, known_hosts, deleted, version FROM creds WHERE id = $1",
        credential_id,
    )
    assert found is not None, "the credential was not projected"
    return dict(found)


async def test_a_newer_version_wins_and_an_older_one_changes_nothing(
    conn: asyncpg.Connection,
) -> None:
    credential = uuid.uuid4()
    await git_credential_projection.project(conn, "creds", changed(credential, 2, name="v2"))
    await git_credential_projection.project(conn, "creds", changed(credential, 1, name="v1"))
    await git_credential_projection.project(conn, "creds", changed(credential, 2, name="again"))
    assert (await row(conn, credential))["name"] == "v2"
    await git_credential_projection.project(conn, "creds", changed(credential, 3, name="v3"))
    assert (await row(conn, credential))["name"] == "v3"


async def test_a_tombstone_keeps_no_secret_and_stays_one(conn: asyncpg.Connection) -> None:
    credential = uuid.uuid4()
    await git_credential_projection.project(conn, "creds", changed(credential, 1))
    # a tombstone that still carried the secret is stored without it
    await git_credential_projection.project(conn, "creds", changed(credential, 2, deleted=True))
    await git_credential_projection.project(conn, "creds", changed(credential, 1))
    stored = await row(conn, credential)
    assert stored == {
        "name": "deploy",
        "secret_sealed": None,
        "known_hosts": None,
        "deleted": True,
        "version": 2,
    }


async def test_a_table_name_is_never_sql_text(conn: asyncpg.Connection) -> None:
    with pytest.raises(ValueError, match="not a table name"):
        await git_credential_projection.project(
            conn, "creds; DROP TABLE creds", changed(uuid.uuid4(), 1)
        )
