"""The identity service's internal API against a real PostgreSQL (migrations applied)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from slipway_contracts import api_tokens
from slipway_identity.api.routes import build_router
from slipway_identity.bootstrap import DEFINITION
from slipway_identity.config import IdentitySettings
from slipway_identity.usecases.deps import Deps
from slipway_libs import db
from slipway_libs.actor import ACTOR_HEADER, Actor
from slipway_libs.crypto import new_key_setting
from slipway_libs.http import create_app

pytestmark = pytest.mark.integration
PASSWORD = "correct horse battery"


@pytest.fixture
async def pool(database_factory) -> AsyncIterator[asyncpg.Pool]:
    dsn = await database_factory("identity", DEFINITION.migrations)
    pool = await db.create_pool(dsn, max_size=5)
    yield pool
    await pool.close()


@pytest.fixture
async def api(pool) -> AsyncIterator[httpx.AsyncClient]:
    settings = IdentitySettings(
        database_url="unused",
        sealing_keys=new_key_setting("t1"),
        argon2_memory_kib=1024,
        argon2_time_cost=1,
        login_max_failures_per_account=3,
    )
    app = create_app(
        service="identity", routers=[build_router(pool, Deps.from_settings(settings), None)]
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://identity/internal/v1"
    ) as client:
        yield client


def as_user(user_id: str, role: str | None = None, org: str | None = None) -> dict[str, str]:
    """The actor header the gateway sends: with the organization it resolved, if any."""
    actor = Actor(
        type="user",
        id=user_id,
        user_id=uuid.UUID(user_id),
        organization_role=role,
        organization_id=uuid.UUID(org) if org else None,
    )
    return {ACTOR_HEADER: actor.header()}


async def sign_up(api: httpx.AsyncClient, name: str = "Ada") -> dict[str, str]:
    email = f"{name.lower()}-{uuid.uuid4().hex[:8]}@example.com"
    response = await api.post("/users", json={"email": email, "password": PASSWORD, "name": name})
    assert response.status_code == 201, response.text
    return response.json()


async def test_sign_up_then_login_and_refresh_rotation(api) -> None:
    user = await sign_up(api)
    dup = await api.post(
        "/users", json={"email": user["email"].upper(), "password": PASSWORD, "name": "X"}
    )
    assert (dup.status_code, dup.json()["error"]["code"]) == (409, "EMAIL_TAKEN")
    login = await api.post("/sessions", json={"email": user["email"], "password": PASSWORD})
    assert login.status_code == 200
    tokens = login.json()
    assert tokens["token_type"] == "bearer" and tokens["expires_in"] == 900
    first = await api.post("/sessions/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert first.status_code == 200
    replay = await api.post("/sessions/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert (replay.status_code, replay.json()["error"]["code"]) == (401, "INVALID_REFRESH_TOKEN")
    # the replay ended the session: the legitimately rotated token is dead too
    second = await api.post(
        "/sessions/refresh", json={"refresh_token": first.json()["refresh_token"]}
    )
    assert second.status_code == 401


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"email": "not-an-email", "password": PASSWORD, "name": "A"}, "INVALID_EMAIL"),
        ({"email": "a@example.com", "password": "short", "name": "A"}, "WEAK_PASSWORD"),
        ({"email": "a@example.com", "password": "aaaaaaaaaaaa", "name": "A"}, "WEAK_PASSWORD"),
        ({"email": "a@example.com", "password": "password123", "name": "A"}, "WEAK_PASSWORD"),
        ({"email": "a@example.com", "password": PASSWORD, "name": "  "}, "INVALID_NAME"),
        ({"email": "a@example.com", "password": 12345678901, "name": "A"}, "VALIDATION_ERROR"),
        ({"email": "a@example.com", "password": PASSWORD}, "VALIDATION_ERROR"),
    ],
)
async def test_bad_sign_ups_are_refused_with_stable_codes(api, body, code) -> None:
    response = await api.post("/users", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == code


async def test_failed_logins_are_throttled_per_account(api) -> None:
    user = await sign_up(api)
    for _ in range(3):
        bad = await api.post(
            "/sessions",
            json={"email": user["email"], "password": "wrong!pass1"},
            headers={"x-slipway-client-address": "10.0.0.1"},
        )
        assert bad.status_code == 401
    blocked = await api.post("/sessions", json={"email": user["email"], "password": PASSWORD})
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0
    assert blocked.json()["error"]["code"] == "RATE_LIMITED"


async def test_organization_owner_rules_invitations_and_transfer(api) -> None:
    ada, bob = await sign_up(api, "Ada"), await sign_up(api, "Bob")
    org = (
        await api.post("/organizations", json={"name": "Acme"}, headers=as_user(ada["id"]))
    ).json()
    ada_owner = as_user(ada["id"], "owner", org["id"])
    members = (await api.get(f"/organizations/{org['id']}/members")).json()["items"]
    assert [(m["user_id"], m["role"]) for m in members] == [(ada["id"], "owner")]
    demote = await api.patch(
        f"/organizations/{org['id']}/members/{ada['id']}", json={"role": "admin"}, headers=ada_owner
    )
    assert (demote.status_code, demote.json()["error"]["code"]) == (409, "LAST_OWNER")
    leave = await api.delete(f"/organizations/{org['id']}/members/{ada['id']}", headers=ada_owner)
    assert leave.status_code == 409
    invitation = await api.post(
        f"/organizations/{org['id']}/members",
        json={"email": bob["email"], "role": "devops"},
        headers=ada_owner,
    )
    assert invitation.status_code == 201
    assert invitation.json()["status"] == "pending"
    stranger = await sign_up(api, "Eve")
    token = {"token": invitation.json()["accept_token"]}
    wrong = await api.post(
        f"/invitations/{invitation.json()['id']}/accept",
        json=token,
        headers=as_user(stranger["id"]),
    )
    assert wrong.status_code == 404
    accepted = await api.post(
        f"/invitations/{invitation.json()['id']}/accept", json=token, headers=as_user(bob["id"])
    )
    assert accepted.status_code == 200 and accepted.json()["role"] == "devops"
    escalate = await api.post(
        f"/organizations/{org['id']}/api-tokens",
        json={"name": "ci", "role": "admin"},
        headers=as_user(bob["id"], "devops", org["id"]),
    )
    assert (escalate.status_code, escalate.json()["error"]["code"]) == (403, "ROLE_TOO_HIGH")
    moved = await api.post(
        f"/organizations/{org['id']}/transfer-ownership",
        json={"user_id": bob["id"]},
        headers=ada_owner,
    )
    assert moved.status_code == 200 and moved.json()["owner_id"] == bob["id"]
    roles = {
        m["user_id"]: m["role"]
        for m in (await api.get(f"/organizations/{org['id']}/members")).json()["items"]
    }
    assert roles == {ada["id"]: "admin", bob["id"]: "owner"}


async def test_api_token_is_shown_once_and_stored_as_a_hash(api, pool) -> None:
    ada = await sign_up(api)
    org = (
        await api.post("/organizations", json={"name": "Acme"}, headers=as_user(ada["id"]))
    ).json()
    created = await api.post(
        f"/organizations/{org['id']}/api-tokens",
        json={"name": "ci", "role": "devops"},
        headers=as_user(ada["id"], "owner", org["id"]),
    )
    assert created.status_code == 201
    token = created.json()["token"]
    assert api_tokens.is_well_formed(token)
    listed = (await api.get(f"/organizations/{org['id']}/api-tokens")).json()["items"]
    assert [t["name"] for t in listed] == ["ci"] and "token" not in listed[0]
    stored = await pool.fetchrow(
        "SELECT * FROM api_tokens WHERE id = $1", uuid.UUID(created.json()["id"])
    )
    assert token not in [str(v) for v in stored.values()]
    assert stored["token_sha256"] == api_tokens.fingerprint(token)
    snapshot = (await api.get("/access-snapshot")).json()
    assert api_tokens.fingerprint(token) in [t["token_sha256"] for t in snapshot["api_tokens"]]
    assert {m["user_id"] for m in snapshot["memberships"] if m["organization_id"] == org["id"]} == {
        ada["id"]
    }


async def test_access_snapshot_carries_public_signing_keys_only(api, pool) -> None:
    ada = await sign_up(api)
    login = await api.post("/sessions", json={"email": ada["email"], "password": PASSWORD})
    assert login.status_code == 200  # signing the access token created the first key
    rotated = await api.post("/keys/rotate")
    assert rotated.status_code == 200  # and a retired key is published too
    stored = await pool.fetch("SELECT kid, private_key_sealed FROM signing_keys")
    assert len(stored) == 2 and all(row["private_key_sealed"] for row in stored)
    keys = (await api.get("/access-snapshot")).json()["signing_keys"]["keys"]
    assert sorted(k["kid"] for k in keys) == sorted(row["kid"] for row in stored)
    # An Ed25519 JWK's private half is ``d``: only the public members may leave the service.
    assert all(set(k["jwk"]) == {"kty", "crv", "x", "kid", "alg", "use"} for k in keys)


def test_api_token_checksum_catches_typos() -> None:
    token = api_tokens.generate()
    assert api_tokens.is_well_formed(token)
    typo = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    assert not api_tokens.is_well_formed(typo)
    assert not api_tokens.is_well_formed("slw_short")
