"""The organizations' git credentials in the deployer, against the real PostgreSQL: projected
from the catalog's events (a newer version wins; a tombstone stays one), and handed to a build
sealed for that build only — the one the builder opens with the build's id."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from slipway_contracts import new_event
from slipway_contracts.events import catalog as ev
from slipway_deployer.bootstrap import DEFINITION
from slipway_deployer.usecases import git_credentials
from slipway_libs import db
from slipway_libs.crypto import Sealer, SealError, new_key_setting

pytestmark = pytest.mark.integration

TOKEN = "glpat-private-token-0123456789"
TRANSPORT = Sealer.from_setting(new_key_setting("t1"))


@pytest.fixture
async def pool(database_factory) -> AsyncIterator[asyncpg.Pool]:
    dsn = await database_factory("deployer", DEFINITION.migrations)
    pool = await db.create_pool(dsn, max_size=4)
    yield pool
    await pool.close()


def changed(
    credential_id: uuid.UUID, org: uuid.UUID, version: int, *, deleted: bool = False, **fields: str
) -> ev.GitCredentialChanged:
    sealed = base64.b64encode(TRANSPORT.seal(TOKEN.encode(), aad=credential_id.bytes)).decode()
    return ev.GitCredentialChanged(
        credential_id=credential_id,
        organization_id=org,
        name=fields.get("name", "forge"),
        kind="token",
        host=fields.get("host"),
        secret_sealed=None if deleted else sealed,
        deleted=deleted,
        version=version,
    )


async def apply(pool: asyncpg.Pool, event: ev.GitCredentialChanged) -> None:
    envelope = new_event(
        event,
        subject=str(event.credential_id),
        source="catalog",
        organization_id=event.organization_id,
    )
    async with db.transaction(pool) as conn:
        await git_credentials.on_changed(conn, envelope)


async def for_build(
    pool: asyncpg.Pool, org: uuid.UUID, url: str, build_id: uuid.UUID
) -> dict[str, str]:
    async with db.transaction(pool) as conn:
        return await git_credentials.for_build(
            conn, TRANSPORT, org_id=org, url=url, build_id=build_id
        )


async def test_a_build_gets_the_token_sealed_for_it_only(pool: asyncpg.Pool) -> None:
    org, credential_id, build_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await apply(pool, changed(credential_id, org, 1, host="git.example.com"))
    fields = await for_build(pool, org, "https://git.example.com/acme/shop.git", build_id)
    assert set(fields) == {"git_token_sealed"}
    sealed = base64.b64decode(fields["git_token_sealed"])
    assert TRANSPORT.open(sealed, aad=build_id.bytes).decode() == TOKEN
    with pytest.raises(SealError):  # bound to that build: another build's id does not open it
        TRANSPORT.open(sealed, aad=uuid.uuid4().bytes)
    stored = await pool.fetchval("SELECT secret_sealed FROM catalog_git_credentials")
    assert TOKEN not in stored
    # another host, another organization, a local path: nothing
    assert await for_build(pool, org, "https://github.com/acme/shop.git", build_id) == {}
    assert await for_build(pool, uuid.uuid4(), "https://git.example.com/a.git", build_id) == {}
    assert await for_build(pool, org, "/srv/repos/shop", build_id) == {}


async def test_newer_versions_win_and_a_deleted_credential_is_no_longer_used(
    pool: asyncpg.Pool,
) -> None:
    org, credential_id, build_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    url = "https://git.example.com/acme/shop.git"
    await apply(pool, changed(credential_id, org, 5, deleted=True))
    await apply(pool, changed(credential_id, org, 3))  # older, redelivered late: ignored
    assert await for_build(pool, org, url, build_id) == {}
    fresh = uuid.uuid4()
    await apply(pool, changed(fresh, org, 7, name="fresh"))
    await apply(pool, changed(fresh, org, 7, name="fresh"))  # the same state again
    assert set(await for_build(pool, org, url, build_id)) == {"git_token_sealed"}
    await apply(pool, changed(fresh, org, 8, deleted=True, name="fresh"))
    assert await for_build(pool, org, url, build_id) == {}
