"""Issue 10, flaws 2 and 10, through the gateway: login throttling that padded or re-cased emails
cannot bypass and strangers cannot turn into the owner's lockout, and invitations that only the
invited address, holding the link token, can accept.

The gateway counts failures by its TCP peer; each test talks from addresses of its own on the
loopback network (127.0.0.0/8 is all local on Linux), so that tests do not share counts.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest

from slipway_libs.testing.platform import Platform
from slipway_libs.testing.public_api import PASSWORD, User, create_org, eventually, sign_up

WRONG = "not the password 1"
Client = Callable[[], AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture(scope="module")
async def platform(platform_factory) -> Platform:
    return await platform_factory(["identity", "gateway"])


@pytest.fixture
def client_from(platform: Platform) -> Client:
    """A client of the public API connecting from a loopback address no other test uses."""
    used: set[str] = set()

    @asynccontextmanager
    async def client() -> AsyncIterator[httpx.AsyncClient]:
        address = _fresh_address(used)
        transport = httpx.AsyncHTTPTransport(local_address=address)
        async with httpx.AsyncClient(
            base_url=f"{platform.url('gateway')}/api/v1", timeout=30, transport=transport
        ) as http:
            yield http

    return client


def _fresh_address(used: set[str]) -> str:
    while True:
        address = f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
        if address not in used:
            used.add(address)
            return address


async def _login(http: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await http.post("/auth/login", json={"email": email, "password": password})


# --- flaw 2: login throttling


async def test_padded_and_recased_emails_are_throttled_after_five_failures(client_from) -> None:
    async with client_from() as owner_http, client_from() as attacker:
        owner = await sign_up(owner_http)
        spellings = [owner.email, f"{owner.email} ", f" {owner.email}", owner.email.upper()]
        for spelling in [*spellings, f"  {owner.email.title()}  "]:
            failed = await _login(attacker, spelling, WRONG)
            assert failed.status_code == 401, failed.text
        # on the old code the trailing space logged in (200) and padded failures answered 401
        for spelling in spellings:
            blocked = await _login(attacker, spelling)
            assert blocked.status_code == 429, (spelling, blocked.text)
            assert blocked.json()["error"]["code"] == "RATE_LIMITED"
            assert int(blocked.headers["retry-after"]) > 0


async def test_an_attackers_failures_do_not_lock_the_owner_out(client_from) -> None:
    async with client_from() as owner_http, client_from() as attacker, client_from() as new_device:
        owner = await sign_up(owner_http)  # signs in from the owner's address
        for _ in range(5):
            assert (await _login(attacker, owner.email, WRONG)).status_code == 401
        assert (await _login(attacker, owner.email)).status_code == 429
        # an address the account never signed in from shares the strangers' count
        assert (await _login(new_device, owner.email)).status_code == 429
        # the owner's address is not locked by them (on the old code: 429)
        signed_in = await _login(owner_http, owner.email)
        assert signed_in.status_code == 200, signed_in.text


async def test_one_address_is_still_limited_across_accounts(client_from) -> None:
    async with client_from() as owner_http, client_from() as sprayer:
        owner = await sign_up(owner_http)
        for n in range(30):  # one guess per account: the per-account limit never trips
            guess = await _login(sprayer, f"user{n}-{uuid.uuid4().hex[:6]}@example.com", WRONG)
            assert guess.status_code == 401
        blocked = await _login(sprayer, owner.email)
        assert blocked.status_code == 429
        assert int(blocked.headers["retry-after"]) > 0
        assert (await _login(owner_http, owner.email)).status_code == 200


# --- flaw 10: invitations bound to the invited address


async def _invite(http: httpx.AsyncClient, org: str, by: User, email: str) -> dict[str, str]:
    invited = await http.post(
        f"/organizations/{org}/members", json={"email": email, "role": "devops"}, headers=by.auth
    )
    assert invited.status_code == 201, invited.text
    body: dict[str, str] = invited.json()
    return body


async def _accept(
    http: httpx.AsyncClient, invitation: str, user: User, token: str | None
) -> httpx.Response:
    body = None if token is None else {"token": token}
    return await http.post(f"/invitations/{invitation}/accept", json=body, headers=user.auth)


async def _sees(http: httpx.AsyncClient, user: User, org: str) -> bool:
    return (await http.get(f"/organizations/{org}", headers=user.auth)).status_code == 200


async def test_only_the_invited_address_with_the_token_can_accept(client_from) -> None:
    async with client_from() as http:
        owner = await sign_up(http, "Ada")
        org = await create_org(http, owner)
        victim = f"victim-{uuid.uuid4().hex[:8]}@example.com"
        invitation = await _invite(http, org, owner, victim)
        # someone who signed up with the invited address without controlling it (sign-up does
        # not verify addresses): on the old code, accepting without a token made them a member
        squatter = await _sign_up_as(http, victim)
        for token, status, code in (
            (None, 422, "INVITATION_TOKEN_REQUIRED"),
            ("sli_" + "A" * 43, 403, "INVITATION_TOKEN_INVALID"),
        ):
            refused = await _accept(http, invitation["id"], squatter, token)
            assert refused.status_code == status, refused.text
            assert refused.json()["error"]["code"] == code
        # no mailer on test platforms: the token came back to the inviter, once; someone else
        # holding it cannot accept either
        assert invitation["delivery"] == "inviter" and invitation["accept_token"]
        eve = await sign_up(http, "Eve")
        stolen = await _accept(http, invitation["id"], eve, invitation["accept_token"])
        assert (stolen.status_code, stolen.json()["error"]["code"]) == (404, "INVITATION_NOT_FOUND")
        assert not await _sees(http, eve, org) and not await _sees(http, squatter, org)
        members = (await http.get(f"/organizations/{org}/members", headers=owner.auth)).json()
        assert [m["user_id"] for m in members["items"]] == [owner.id]


async def test_an_invitation_token_works_once(client_from) -> None:
    async with client_from() as http:
        owner, bob = await sign_up(http, "Ada"), await sign_up(http, "Bob")
        org = await create_org(http, owner)
        # the invitation's address is normalized like the account's
        invitation = await _invite(http, org, owner, f"  {bob.email.upper()} ")
        assert invitation["email"] == bob.email
        accepted = await _accept(http, invitation["id"], bob, invitation["accept_token"])
        assert accepted.status_code == 200, accepted.text
        await eventually(lambda: _sees(http, bob, org))
        again = await _accept(http, invitation["id"], bob, invitation["accept_token"])
        assert (again.status_code, again.json()["error"]["code"]) == (409, "INVITATION_NOT_PENDING")


async def _sign_up_as(http: httpx.AsyncClient, email: str) -> User:
    created = await http.post(
        "/auth/signup", json={"email": email, "password": PASSWORD, "name": "Squatter"}
    )
    assert created.status_code == 201, created.text
    tokens = (await _login(http, email)).json()
    return User(created.json()["id"], email, tokens["access_token"], tokens["refresh_token"])
