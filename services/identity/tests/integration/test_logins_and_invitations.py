"""Login throttling and invitation tokens against a real PostgreSQL, and invitation mail through
the devstack's SMTP catcher (a real SMTP conversation)."""

from __future__ import annotations

import asyncio
import email
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from slipway_identity.api.routes import build_router
from slipway_identity.bootstrap import DEFINITION
from slipway_identity.config import IdentitySettings
from slipway_identity.usecases.deps import Deps
from slipway_libs import db
from slipway_libs.actor import ACTOR_HEADER, Actor
from slipway_libs.crypto import new_key_setting
from slipway_libs.http import create_app
from slipway_libs.testing.platform import closed_port, free_port

pytestmark = pytest.mark.integration
PASSWORD = "correct horse battery"
CATCHER = Path(__file__).resolve().parents[4] / "deploy" / "devstack" / "mailcatcher.py"
Client = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
async def pool(database_factory) -> AsyncIterator[asyncpg.Pool]:
    dsn = await database_factory("identity", DEFINITION.migrations)
    pool = await db.create_pool(dsn, max_size=5)
    yield pool
    await pool.close()


@pytest.fixture
def identity(pool) -> Client:
    """An identity API in this process, with settings overridden per test."""

    @asynccontextmanager
    async def client(**overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
        settings = IdentitySettings(
            database_url="unused",
            sealing_keys=new_key_setting("t1"),
            argon2_memory_kib=1024,
            argon2_time_cost=1,
            **overrides,
        )
        app = create_app(
            service="identity", routers=[build_router(pool, Deps.from_settings(settings), None)]
        )
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://identity/internal/v1"
        ) as http:
            yield http

    return client


@pytest.fixture
def catcher(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """The devstack's SMTP catcher on a free port, writing to a temporary directory."""
    directory = tmp_path / "mail"
    for _ in range(3):  # a port found free may be taken before the catcher binds it: another
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, str(CATCHER), "--port", str(port), "--dir", str(directory)],
            stdout=subprocess.PIPE,
        )
        assert process.stdout is not None
        if b"mailcatcher on" in process.stdout.readline():  # listening
            break
        process.wait(10)
    else:
        pytest.fail("the mail catcher could not listen on any of 3 free ports")
    yield port, directory
    process.terminate()
    process.wait(10)


def as_user(user_id: str, role: str | None = None, org: str | None = None) -> dict[str, str]:
    actor = Actor(
        type="user",
        id=user_id,
        user_id=uuid.UUID(user_id),
        organization_role=role,
        organization_id=uuid.UUID(org) if org else None,
    )
    return {ACTOR_HEADER: actor.header()}


def from_address(address: str) -> dict[str, str]:
    return {"x-slipway-client-address": address}


async def sign_up(api: httpx.AsyncClient, name: str = "Ada") -> dict[str, str]:
    email_ = f"{name.lower()}-{uuid.uuid4().hex[:8]}@example.com"
    response = await api.post("/users", json={"email": email_, "password": PASSWORD, "name": name})
    assert response.status_code == 201, response.text
    return response.json()


async def login(
    api: httpx.AsyncClient, email_: str, *, address: str, password: str = PASSWORD
) -> httpx.Response:
    return await api.post(
        "/sessions", json={"email": email_, "password": password}, headers=from_address(address)
    )


async def org_of(api: httpx.AsyncClient, owner: dict[str, str]) -> str:
    created = await api.post("/organizations", json={"name": "Acme"}, headers=as_user(owner["id"]))
    assert created.status_code == 201, created.text
    org_id: str = created.json()["id"]
    return org_id


async def invite(api: httpx.AsyncClient, org: str, by: dict[str, str], who: str) -> dict[str, Any]:
    response = await api.post(
        f"/organizations/{org}/members",
        json={"email": who, "role": "devops"},
        headers=as_user(by["id"], "owner", org),
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def accept(
    api: httpx.AsyncClient, invitation: str, user: dict[str, str], body: Any = None
) -> httpx.Response:
    return await api.post(
        f"/invitations/{invitation}/accept", json=body, headers=as_user(user["id"])
    )


# --- emails and throttling


async def test_an_address_is_one_account_however_it_is_spelled(identity) -> None:
    async with identity() as api:
        local = f"Ada.{uuid.uuid4().hex[:8]}"
        created = await api.post(
            "/users",
            json={"email": f"  {local}@Example.COM ", "password": PASSWORD, "name": "Ada"},
        )
        assert created.status_code == 201, created.text
        assert created.json()["email"] == f"{local.lower()}@example.com"
        for spelling in (f"{local.upper()}@EXAMPLE.com", f" {local.lower()}@example.com "):
            assert (await login(api, spelling, address="10.1.0.1")).status_code == 200
        again = await api.post(
            "/users",
            json={"email": f"{local.lower()}@example.com", "password": PASSWORD, "name": "X"},
        )
        assert (again.status_code, again.json()["error"]["code"]) == (409, "EMAIL_TAKEN")


@pytest.mark.parametrize("suffix", ["\x00", "\u202e", "\u200b"])
async def test_control_characters_in_an_email_are_refused(identity, suffix: str) -> None:
    # refused by the request model's text type or by the email normalization: 422 either way
    refusals = {"INVALID_EMAIL", "VALIDATION_ERROR"}
    async with identity() as api:
        user = await sign_up(api)
        signup = await api.post(
            "/users",
            json={
                "email": f"x{uuid.uuid4().hex[:6]}@example.com{suffix}",
                "password": PASSWORD,
                "name": "X",
            },
        )
        assert signup.status_code == 422 and signup.json()["error"]["code"] in refusals
        refused = await login(api, user["email"] + suffix, address="10.1.0.2")
        assert refused.status_code == 422 and refused.json()["error"]["code"] in refusals


async def test_padded_and_cased_emails_count_against_one_account(identity) -> None:
    async with identity(login_max_failures_per_account=3) as api:
        user = await sign_up(api)
        spellings = [f" {user['email']}", user["email"].upper(), f"  {user['email'].title()}  "]
        for spelling in spellings:
            bad = await login(api, spelling, password="wrong!pass1", address="10.2.0.1")
            assert bad.status_code == 401
        for spelling in [f"{user['email']} ", *spellings, user["email"]]:
            blocked = await login(api, spelling, address="10.2.0.1")
            assert blocked.status_code == 429, spelling
            assert int(blocked.headers["retry-after"]) > 0


async def test_strangers_failures_never_lock_the_owner_out_where_they_signed_in(identity) -> None:
    async with identity(login_max_failures_per_account=3) as api:
        user = await sign_up(api)
        assert (await login(api, user["email"], address="10.3.0.1")).status_code == 200
        for _ in range(3):
            bad = await login(api, user["email"], password="wrong!pass1", address="10.3.0.66")
            assert bad.status_code == 401
        # the attacker's address and every address the account never signed in from wait
        assert (await login(api, user["email"], address="10.3.0.66")).status_code == 429
        assert (await login(api, user["email"], address="10.3.0.2")).status_code == 429
        # the owner's own address does not
        assert (await login(api, user["email"], address="10.3.0.1")).status_code == 200
        # and counts its own failures: mistyping there is limited too
        for _ in range(3):
            bad = await login(api, user["email"], password="wrong!pass1", address="10.3.0.1")
            assert bad.status_code == 401
        assert (await login(api, user["email"], address="10.3.0.1")).status_code == 429


async def test_one_address_is_limited_across_accounts(identity) -> None:
    async with identity(login_max_failures_per_address=4) as api:
        user = await sign_up(api)
        for address in ("10.4.0.1", "2001:db8:4:4::1"):
            for n in range(4):
                # one guess per account, on accounts that may not even exist (spraying)
                where = address if ":" not in address else f"2001:db8:4:4::{n + 1}"
                guess = await login(
                    api, f"nobody{n}@example.com", password="wrong!pass1", address=where
                )
                assert guess.status_code == 401
        # a new account, the right password: still too many failures from there
        blocked = await login(api, user["email"], address="10.4.0.1")
        assert (blocked.status_code, blocked.json()["error"]["code"]) == (429, "RATE_LIMITED")
        assert int(blocked.headers["retry-after"]) > 0
        # IPv6 counts per /64: another address of the block is the same client
        assert (await login(api, user["email"], address="2001:db8:4:4::99")).status_code == 429
        assert (await login(api, user["email"], address="10.4.0.2")).status_code == 200


# --- invitations


async def test_an_invitation_needs_its_token_once_in_time(identity, pool) -> None:
    async with identity() as api:
        ada, bob = await sign_up(api, "Ada"), await sign_up(api, "Bob")
        org = await org_of(api, ada)
        first = await invite(api, org, ada, f"  {bob['email'].upper()} ")
        assert first["email"] == bob["email"] and first["delivery"] == "inviter"
        token = first["accept_token"]
        missing = await accept(api, first["id"], bob)
        assert (missing.status_code, missing.json()["error"]["code"]) == (
            422,
            "INVITATION_TOKEN_REQUIRED",
        )
        wrong = await accept(api, first["id"], bob, {"token": token[:-2] + "xx"})
        assert (wrong.status_code, wrong.json()["error"]["code"]) == (
            403,
            "INVITATION_TOKEN_INVALID",
        )
        # inviting again: the same invitation, a new token; the first one stops working
        second = await invite(api, org, ada, bob["email"])
        assert second["id"] == first["id"] and second["accept_token"] != token
        stale = await accept(api, first["id"], bob, {"token": token})
        assert stale.json()["error"]["code"] == "INVITATION_TOKEN_INVALID"
        stored = await pool.fetchrow(
            "SELECT * FROM invitations WHERE id = $1", uuid.UUID(first["id"])
        )
        assert second["accept_token"] not in [str(v) for v in stored.values()]
        listed = (
            await api.get(
                f"/organizations/{org}/invitations", headers=as_user(ada["id"], "owner", org)
            )
        ).json()["items"]
        assert all("token" not in key for item in listed for key in item)
        await pool.execute(
            "UPDATE invitations SET expires_at = now() - interval '1 second' WHERE id = $1",
            uuid.UUID(first["id"]),
        )
        expired = await accept(api, first["id"], bob, {"token": second["accept_token"]})
        assert (expired.status_code, expired.json()["error"]["code"]) == (
            409,
            "INVITATION_NOT_PENDING",
        )
        assert (
            await api.get(f"/organizations/{org}/members", headers=as_user(ada["id"], "owner", org))
        ).json()["items"][1:] == []


async def test_a_token_works_once_and_only_for_the_invited_address(identity) -> None:
    async with identity() as api:
        ada, bob, eve = [await sign_up(api, n) for n in ("Ada", "Bob", "Eve")]
        org = await org_of(api, ada)
        invitation = await invite(api, org, ada, bob["email"])
        token = {"token": invitation["accept_token"]}
        stolen = await accept(api, invitation["id"], eve, token)
        assert (stolen.status_code, stolen.json()["error"]["code"]) == (404, "INVITATION_NOT_FOUND")
        accepted = await accept(api, invitation["id"], bob, token)
        assert accepted.status_code == 200 and accepted.json()["role"] == "devops"
        again = await accept(api, invitation["id"], bob, token)
        assert (again.status_code, again.json()["error"]["code"]) == (409, "INVITATION_NOT_PENDING")
        members = (
            await api.get(f"/organizations/{org}/members", headers=as_user(ada["id"], "owner", org))
        ).json()["items"]
        assert {m["user_id"] for m in members} == {ada["id"], bob["id"]}


async def test_with_smtp_the_token_goes_only_by_mail(identity, catcher) -> None:
    port, mailbox = catcher
    async with identity(smtp_host="127.0.0.1", smtp_port=port, mail_from="ops@slipway.test") as api:
        ada, bob = await sign_up(api, "Ada"), await sign_up(api, "Bob")
        org = await org_of(api, ada)
        invitation = await invite(api, org, ada, bob["email"])
        assert invitation["delivery"] == "mail" and "accept_token" not in invitation
        mail = await _mail_to(mailbox, bob["email"])
        assert mail["From"] == "ops@slipway.test" and mail["Subject"] == "Join Acme on Slipway"
        body = mail.get_payload(decode=True).decode()
        assert f"/invitations/{invitation['id']}/accept" in body
        token = re.search(r"sli_[A-Za-z0-9_-]+", body)
        assert token is not None
        accepted = await accept(api, invitation["id"], bob, {"token": token.group()})
        assert accepted.status_code == 200, accepted.text


async def test_a_mail_that_cannot_be_sent_leaves_the_invitation_to_send_again(identity) -> None:
    with closed_port() as port:  # held: no mail server can be there meanwhile
        async with identity(smtp_host="127.0.0.1", smtp_port=port, smtp_timeout_s=2) as api:
            ada = await sign_up(api, "Ada")
            org = await org_of(api, ada)
            invitation = await invite(api, org, ada, "carol@example.com")
            assert invitation["delivery"] == "mail_failed" and "accept_token" not in invitation
            listed = (
                await api.get(
                    f"/organizations/{org}/invitations", headers=as_user(ada["id"], "owner", org)
                )
            ).json()["items"]
            assert [i["id"] for i in listed] == [invitation["id"]]


async def _mail_to(mailbox: Path, address: str) -> email.message.Message:
    for _ in range(1200):  # up to 60 s: the mail goes out from another process
        for path in sorted(mailbox.glob("*.eml")):
            message = email.message_from_bytes(path.read_bytes())
            if message["To"] == address:
                return message
        await asyncio.sleep(0.05)
    raise AssertionError(f"no mail to {address} in {mailbox}")
