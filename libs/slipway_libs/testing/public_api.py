"""Driving the public API in tests: sign-up, login, organizations, members, waiting; and what
every service answer holds, for the catalog's tests and the contract tests of the document."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

PASSWORD = "correct horse battery"  # noqa: S105 (test users)

# what every service answer holds whatever its kind (its name and kind are also its spec's; the
# rest of the answer is its kind's spec)
SERVICE_ANSWER_FIELDS = frozenset(
    {"id", "name", "kind", "environment_id", "project_id", "stage_id"}
    | {"created_at", "updated_at", "resource_version"}
)


@dataclass
class User:
    id: str
    email: str
    access_token: str
    refresh_token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.access_token}"}


def token_auth(token: str) -> dict[str, str]:
    return {"authorization": f"Token {token}"}


async def sign_up(api: httpx.AsyncClient, name: str = "Ada") -> User:
    email = f"{name.lower()}-{uuid.uuid4().hex[:10]}@example.com"
    created = await api.post(
        "/auth/signup", json={"email": email, "password": PASSWORD, "name": name}
    )
    assert created.status_code == 201, created.text
    login = await api.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    body = login.json()
    return User(created.json()["id"], email, body["access_token"], body["refresh_token"])


async def create_org(api: httpx.AsyncClient, owner: User, name: str = "Acme") -> str:
    response = await api.post("/organizations", json={"name": name}, headers=owner.auth)
    assert response.status_code == 201, response.text
    org_id: str = response.json()["id"]
    await eventually(lambda: _visible(api, owner, org_id))
    return org_id


async def _visible(api: httpx.AsyncClient, user: User, org_id: str) -> bool:
    return (await api.get(f"/organizations/{org_id}", headers=user.auth)).status_code == 200


async def add_member(api: httpx.AsyncClient, org_id: str, by: User, who: User, role: str) -> None:
    invited = await api.post(
        f"/organizations/{org_id}/members", json={"email": who.email, "role": role}, headers=by.auth
    )
    assert invited.status_code == 201, invited.text
    # test platforms configure no mailer: the link token comes back to the inviter
    accepted = await api.post(
        f"/invitations/{invited.json()['id']}/accept",
        json={"token": invited.json()["accept_token"]},
        headers=who.auth,
    )
    assert accepted.status_code == 200, accepted.text
    await eventually(lambda: _visible(api, who, org_id))


async def eventually(check: Callable[[], Awaitable[bool]], within_s: float = 60.0) -> float:
    """Seconds until ``check`` held; fails when it does not hold within ``within_s``. The
    default is a wait on the platform's processes and Kafka, generous for a crowded machine;
    a test whose subject is how soon something holds passes its own ``within_s``."""
    started = time.monotonic()
    while True:
        if await check():
            return time.monotonic() - started
        if time.monotonic() - started > within_s:
            raise AssertionError(f"not true within {within_s}s")
        await asyncio.sleep(0.02)
