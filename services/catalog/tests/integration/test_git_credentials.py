"""Git credentials (issue 13, item 4) through the catalog's internal API on a real database:
created sealed, never answered, published sealed for transport only, deleted with their secret,
invisible to another organization."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from slipway_catalog.usecases import git_credentials
from slipway_catalog.usecases.deps import Deps
from slipway_libs.crypto import Sealer, new_key_setting

pytestmark = pytest.mark.integration

TOKEN = "ghp_private-repository-token-0123456789"
KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "-----END OPENSSH PRIVATE KEY-----\n"
)
KNOWN_HOSTS = (
    "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
)


async def events(pool: asyncpg.Pool, credential_id: str) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT payload FROM outbox WHERE event_type = 'catalog.GitCredentialChanged'"
        " AND key = $1 ORDER BY id",
        credential_id,
    )
    return [json.loads(row["payload"]) for row in rows]


async def test_a_token_is_sealed_published_for_transport_and_never_answered(
    api: httpx.AsyncClient, catalog_db: tuple[str, asyncpg.Pool], deps: Deps
) -> None:
    org = uuid.uuid4()
    base = f"/organizations/{org}/git-credentials"
    body = {"name": "forge", "kind": "token", "host": "Git.Example.com", "token": TOKEN}
    created = await api.post(base, json=body)
    assert created.status_code == 201, created.text
    assert TOKEN not in created.text
    credential = created.json()
    assert credential["name"] == "forge" and credential["kind"] == "token"
    assert credential["host"] == "git.example.com" and credential["created_at"]

    listed = await api.get(base)
    assert listed.status_code == 200 and TOKEN not in listed.text
    assert [c["id"] for c in listed.json()["items"]] == [credential["id"]]
    read = await api.get(f"{base}/{credential['id']}")
    assert read.status_code == 200 and TOKEN not in read.text

    pool = catalog_db[1]
    stored = await pool.fetchrow(
        "SELECT secret_sealed FROM git_credentials WHERE id = $1", uuid.UUID(credential["id"])
    )
    assert TOKEN.encode() not in bytes(stored["secret_sealed"])
    [event] = await events(pool, credential["id"])
    assert TOKEN not in json.dumps(event)
    data = event["data"]
    assert data["host"] == "git.example.com" and not data["deleted"]
    sealed = base64.b64decode(data["secret_sealed"])
    opened = deps.transport.open(sealed, aad=uuid.UUID(credential["id"]).bytes)
    assert opened.decode() == TOKEN

    again = await api.post(base, json=body)
    assert again.status_code == 409, again.text
    assert again.json()["error"]["code"] == "GIT_CREDENTIAL_NAME_TAKEN"


async def test_a_deleted_credential_is_gone_with_its_secret(
    api: httpx.AsyncClient, catalog_db: tuple[str, asyncpg.Pool]
) -> None:
    org = uuid.uuid4()
    base = f"/organizations/{org}/git-credentials"
    body = {"name": "deploy key", "kind": "ssh_key", "private_key": KEY, "known_hosts": KNOWN_HOSTS}
    created = await api.post(base, json=body)
    assert created.status_code == 201, created.text
    assert "PRIVATE KEY" not in created.text and created.json()["host"] is None
    credential_id = created.json()["id"]

    deleted = await api.delete(f"{base}/{credential_id}")
    assert deleted.status_code == 204, deleted.text
    gone = await api.get(f"{base}/{credential_id}")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "GIT_CREDENTIAL_NOT_FOUND"
    assert (await api.delete(f"{base}/{credential_id}")).status_code == 404
    assert (await api.get(base)).json()["items"] == []

    pool = catalog_db[1]
    stored = await pool.fetchrow(
        "SELECT secret_sealed, known_hosts FROM git_credentials WHERE id = $1",
        uuid.UUID(credential_id),
    )
    assert stored["secret_sealed"] is None and stored["known_hosts"] is None
    created_event, tombstone = await events(pool, credential_id)
    assert created_event["data"]["known_hosts"] == KNOWN_HOSTS + "\n"
    assert tombstone["data"]["deleted"] and tombstone["data"]["secret_sealed"] is None
    assert tombstone["data"]["version"] > created_event["data"]["version"]


async def test_another_organization_sees_nothing(api: httpx.AsyncClient) -> None:
    org, other = uuid.uuid4(), uuid.uuid4()
    body = {"name": "forge", "kind": "token", "token": TOKEN}
    created = await api.post(f"/organizations/{org}/git-credentials", json=body)
    assert created.status_code == 201, created.text
    credential_id = created.json()["id"]
    assert (await api.get(f"/organizations/{other}/git-credentials")).json()["items"] == []
    read = await api.get(f"/organizations/{other}/git-credentials/{credential_id}")
    assert read.status_code == 404, read.text
    delete = await api.delete(f"/organizations/{other}/git-credentials/{credential_id}")
    assert delete.status_code == 404, delete.text


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"kind": "token", "token": "has a space"}, "INVALID_TOKEN", "token"),
        ({"kind": "token"}, "INVALID_TOKEN", "token"),
        ({"kind": "token", "token": TOKEN, "host": "not a host/"}, "INVALID_HOST", "host"),
        ({"kind": "ssh_key", "private_key": "ssh-rsa AAAA" + TOKEN}, "INVALID_PRIVATE_KEY", None),
        (
            {"kind": "ssh_key", "private_key": KEY, "known_hosts": "only-a-host"},
            "INVALID_KNOWN_HOSTS",
            "known_hosts",
        ),
        ({"kind": "token", "token": TOKEN, "private_key": KEY}, "VALIDATION_ERROR", None),
        ({"kind": "password", "token": TOKEN}, "VALIDATION_ERROR", None),
    ],
)
async def test_bad_input_is_a_clear_422_that_never_echoes_the_secret(
    api: httpx.AsyncClient, body: dict[str, Any], code: str, field: str | None
) -> None:
    answer = await api.post(
        f"/organizations/{uuid.uuid4()}/git-credentials", json={"name": "x", **body}
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == code
    assert TOKEN not in answer.text and "AAAA" not in answer.text
    if field is not None:
        assert field in json.dumps(answer.json()["error"].get("details"))


async def test_reseal_moves_secrets_to_the_new_key(
    api: httpx.AsyncClient, catalog_db: tuple[str, asyncpg.Pool], deps: Deps
) -> None:
    org = uuid.uuid4()
    body = {"name": "forge", "kind": "token", "token": TOKEN}
    created = await api.post(f"/organizations/{org}/git-credentials", json=body)
    credential_id = uuid.UUID(created.json()["id"])
    old_setting = ",".join(
        f"{kid}:{base64.b64encode(k).decode()}" for kid, k in deps.at_rest.keys.items()
    )
    rotated = Deps(
        at_rest=Sealer.from_setting(f"{new_key_setting('t2')},{old_setting}"),
        transport=deps.transport,
        local_runtime=False,
    )
    async with catalog_db[1].acquire() as conn:
        assert await git_credentials.reseal_all(conn, rotated) >= 1
        row = await conn.fetchrow(
            "SELECT secret_sealed FROM git_credentials WHERE id = $1", credential_id
        )
    sealed = bytes(row["secret_sealed"])
    assert rotated.at_rest.key_id(sealed) == "t2"
    assert rotated.at_rest.open(sealed, aad=credential_id.bytes).decode() == TOKEN
