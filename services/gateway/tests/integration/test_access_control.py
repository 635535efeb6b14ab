"""Authentication and authorization through the gateway, against real identity and gateway
processes, the real broker and database. Changes of access take effect once the gateway's
projection has them: the tests wait for that with a generous deadline (how fast it is, is
measured by ``bench/``, never asserted by a test)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from slipway_libs.actor import INTERNAL_TOKEN_HEADER
from slipway_libs.testing.platform import Platform
from slipway_libs.testing.public_api import (
    PASSWORD,
    add_member,
    create_org,
    eventually,
    sign_up,
    token_auth,
)

pytestmark = pytest.mark.integration

# a deadline for a failure message, not a speed: a loaded machine must not fail these tests
TAKES_EFFECT_WITHIN_S = 30.0


async def test_signup_login_me_and_own_organization(api) -> None:
    ada = await sign_up(api)
    me = await api.get("/me", headers=ada.auth)
    assert me.status_code == 200 and me.json()["email"] == ada.email
    org = await create_org(api, ada)
    mine = (await api.get("/organizations", headers=ada.auth)).json()["items"]
    assert [(o["id"], o["role"]) for o in mine] == [(org, "owner")]


async def test_another_tenants_organization_is_not_found(api) -> None:
    ada, eve = await sign_up(api, "Ada"), await sign_up(api, "Eve")
    org = await create_org(api, ada)
    for method, path in [
        ("GET", ""),
        ("PATCH", ""),
        ("GET", "/members"),
        ("DELETE", ""),
        ("GET", "/api-tokens"),
        ("POST", "/api-tokens"),
    ]:
        response = await api.request(
            method,
            f"/organizations/{org}{path}",
            headers=eve.auth,
            json={} if method in ("POST", "PATCH") else None,
        )
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["error"]["code"] == "ORGANIZATION_NOT_FOUND"


async def test_api_token_is_shown_once_and_refused_once_revoked(api) -> None:
    ada = await sign_up(api)
    org = await create_org(api, ada)
    created = await api.post(
        f"/organizations/{org}/api-tokens", json={"name": "ci", "role": "viewer"}, headers=ada.auth
    )
    assert created.status_code == 201
    token = created.json()["token"]
    assert token.startswith("slw_")
    listed = (await api.get(f"/organizations/{org}/api-tokens", headers=ada.auth)).json()
    assert all("token" not in t for t in listed["items"])

    async def accepted() -> bool:
        response = await api.get(f"/organizations/{org}", headers=token_auth(token))
        return response.status_code == 200

    await eventually(accepted)
    mine = await api.get("/organizations", headers=token_auth(token))
    assert [o["id"] for o in mine.json()["items"]] == [org]
    # as a user's list does (and the OpenAPI document requires): its role in the organization
    assert mine.json()["items"][0]["role"] == "viewer"
    forbidden = await api.patch(
        f"/organizations/{org}", json={"name": "x"}, headers=token_auth(token)
    )
    assert forbidden.status_code == 403
    revoked = await api.delete(
        f"/organizations/{org}/api-tokens/{created.json()['id']}", headers=ada.auth
    )
    assert revoked.status_code == 204

    async def refused() -> bool:
        response = await api.get(f"/organizations/{org}", headers=token_auth(token))
        return response.status_code == 401

    await eventually(refused, within_s=TAKES_EFFECT_WITHIN_S)


async def test_removed_member_and_role_changes_take_effect(api) -> None:
    ada, bob = await sign_up(api, "Ada"), await sign_up(api, "Bob")
    org = await create_org(api, ada)
    await add_member(api, org, ada, bob, "viewer")
    assert (
        await api.patch(f"/organizations/{org}", json={"name": "B"}, headers=bob.auth)
    ).status_code == 403
    changed = await api.patch(
        f"/organizations/{org}/members/{bob.id}", json={"role": "admin"}, headers=ada.auth
    )
    assert changed.status_code == 200

    async def can_edit() -> bool:
        response = await api.patch(
            f"/organizations/{org}", json={"description": "by bob"}, headers=bob.auth
        )
        return response.status_code == 200

    await eventually(can_edit, within_s=TAKES_EFFECT_WITHIN_S)
    removed = await api.delete(f"/organizations/{org}/members/{bob.id}", headers=ada.auth)
    assert removed.status_code == 204

    async def hidden() -> bool:
        response = await api.get(f"/organizations/{org}", headers=bob.auth)
        return response.status_code == 404

    await eventually(hidden, within_s=TAKES_EFFECT_WITHIN_S)


async def test_logout_and_key_rotation_refuse_stale_session_tokens(api, platform: Platform) -> None:
    ada = await sign_up(api)
    assert (await api.get("/me", headers=ada.auth)).status_code == 200
    out = await api.post("/auth/logout", headers=ada.auth)
    assert out.status_code == 204

    async def me_refused(user_auth: dict[str, str]) -> bool:
        return (await api.get("/me", headers=user_auth)).status_code == 401

    await eventually(lambda: me_refused(ada.auth), within_s=TAKES_EFFECT_WITHIN_S)

    bob = await sign_up(api, "Bob")
    assert (await api.get("/me", headers=bob.auth)).status_code == 200
    async with httpx.AsyncClient(base_url=platform.url("identity")) as identity:
        rotated = await identity.post(
            "/internal/v1/keys/rotate",
            params={"revoke_previous": "true"},
            headers={INTERNAL_TOKEN_HEADER: platform.env["SLIPWAY_INTERNAL_TOKEN"]},
        )
    assert rotated.status_code == 200
    await eventually(lambda: me_refused(bob.auth), within_s=TAKES_EFFECT_WITHIN_S)
    again = await api.post("/auth/login", json={"email": bob.email, "password": PASSWORD})
    fresh = {"authorization": f"Bearer {again.json()['access_token']}"}
    await eventually(lambda: _ok(api, fresh))


async def _ok(api: httpx.AsyncClient, auth: dict[str, str]) -> bool:
    return (await api.get("/me", headers=auth)).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("POST", "/auth/signup", b'{"email": ', 400, "MALFORMED_JSON"),
        (
            "POST",
            "/auth/signup",
            b'{"email": "a@b.co", "password": 5, "name": "A"}',
            422,
            "VALIDATION_ERROR",
        ),
        (
            "POST",
            "/auth/signup",
            b'{"email": "a@b.co", "password": "short", "name": "A"}',
            422,
            "WEAK_PASSWORD",
        ),
        (
            "POST",
            "/auth/login",
            b'{"email": "nobody@b.co", "password": "whatever-pass"}',
            401,
            "INVALID_CREDENTIALS",
        ),
        ("POST", "/auth/signup", b"x" * 2_000_000, 413, "PAYLOAD_TOO_LARGE"),
        ("GET", "/me", None, 401, "UNAUTHENTICATED"),
        ("GET", "/nope", None, 404, "NOT_FOUND"),
    ],
)
async def test_bad_input_gets_a_clear_4xx(api, method, path, body, status, code) -> None:
    response = await api.request(
        method, path, content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


async def test_unknown_and_malformed_ids_and_bad_credentials(api) -> None:
    ada = await sign_up(api)
    unknown = await api.get(f"/organizations/{uuid.uuid4()}", headers=ada.auth)
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "ORGANIZATION_NOT_FOUND")
    malformed = await api.get("/organizations/not-a-uuid", headers=ada.auth)
    assert (malformed.status_code, malformed.json()["error"]["code"]) == (422, "INVALID_ID")
    # httpx removes the dot segments itself: no route matches what is left
    climbing = await api.get("/organizations/../../etc", headers=ada.auth)
    assert climbing.status_code == 404
    for header in ("Bearer not.a.jwt", "Token slw_fake", "Basic abc", "Token " + "slw_" + "A" * 36):
        response = await api.get("/me", headers={"authorization": header})
        assert response.status_code == 401, header
    duplicate = await api.post(
        "/auth/signup", json={"email": ada.email, "password": PASSWORD, "name": "Again"}
    )
    assert (duplicate.status_code, duplicate.json()["error"]["code"]) == (409, "EMAIL_TAKEN")


async def test_every_change_reaches_the_audit_log_with_actor_and_origin(api) -> None:
    ada, bob = await sign_up(api, "Ada"), await sign_up(api, "Bob")
    org = await create_org(api, ada)
    await add_member(api, org, ada, bob, "viewer")
    token = await api.post(
        f"/organizations/{org}/api-tokens",
        json={"name": "deployer", "role": "devops"},
        headers={**ada.auth, "x-slipway-origin": "cli"},
    )
    assert token.status_code == 201
    renamed = await api.patch(
        f"/organizations/{org}", json={"name": "Acme 2"}, headers=token_auth(token.json()["token"])
    )
    assert renamed.status_code == 403  # devops may not edit the organization

    async def logged() -> list[dict[str, object]]:
        response = await api.get(f"/organizations/{org}/audit-events", headers=ada.auth)
        return response.json()["items"]

    async def complete() -> bool:
        kinds = {(e["target_type"], e["action"]) for e in await logged()}
        return {
            ("ORGANIZATION", "CREATE"),
            ("INVITATION", "CREATE"),
            ("INVITATION", "ACCEPT"),
            ("API_TOKEN", "CREATE"),
        } <= kinds

    await eventually(complete, within_s=60)  # audit events come through Kafka
    events = await logged()
    created = next(e for e in events if e["target_type"] == "API_TOKEN")
    assert created["actor"]["id"] == ada.id and created["origin"] == "cli"
    accepted = next(e for e in events if e["action"] == "ACCEPT")
    assert accepted["actor"]["id"] == bob.id
    only_tokens = await api.get(
        f"/organizations/{org}/audit-events", params={"target_type": "API_TOKEN"}, headers=ada.auth
    )
    assert [e["target_type"] for e in only_tokens.json()["items"]] == ["API_TOKEN"]
    page = await api.get(
        f"/organizations/{org}/audit-events", params={"limit": 2}, headers=ada.auth
    )
    assert len(page.json()["items"]) == 2 and page.json()["next_cursor"]
    rest = await api.get(
        f"/organizations/{org}/audit-events",
        params={"limit": 200, "cursor": page.json()["next_cursor"]},
        headers=ada.auth,
    )
    ids = [e["id"] for e in page.json()["items"] + rest.json()["items"]]
    assert len(ids) == len(set(ids)) == len(events)
    viewer = await api.get(f"/organizations/{org}/audit-events", headers=bob.auth)
    assert viewer.status_code == 403
    bad = await api.get(
        f"/organizations/{org}/audit-events", params={"cursor": "garbage"}, headers=ada.auth
    )
    assert (bad.status_code, bad.json()["error"]["code"]) == (422, "INVALID_CURSOR")


async def test_read_your_writes_what_you_create_is_usable_at_once(api) -> None:
    ada = await sign_up(api)
    created = await api.post("/organizations", json={"name": "Instant"}, headers=ada.auth)
    org = created.json()["id"]
    # no waiting: the gateway applied the change identity answered with
    assert (await api.get(f"/organizations/{org}", headers=ada.auth)).status_code == 200
    token = await api.post(
        f"/organizations/{org}/api-tokens", json={"name": "now", "role": "viewer"}, headers=ada.auth
    )
    used = await api.get(f"/organizations/{org}/members", headers=token_auth(token.json()["token"]))
    assert used.status_code == 200
    revoked = await api.delete(
        f"/organizations/{org}/api-tokens/{token.json()['id']}", headers=ada.auth
    )
    assert revoked.status_code == 204
    refused = await api.get(f"/organizations/{org}", headers=token_auth(token.json()["token"]))
    assert refused.status_code == 401
