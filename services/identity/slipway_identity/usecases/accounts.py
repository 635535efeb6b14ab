"""Sign-up, login with throttling, refresh-token rotation, logout, signing keys."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from slipway_contracts.events.identity import UserSignedUp
from slipway_identity import security
from slipway_identity.db import queries as q
from slipway_identity.domain.accounts import check_password, clean_name, normalize_email
from slipway_identity.domain.login_throttle import address_key, retry_after_s
from slipway_identity.domain.users import SigningKey, User
from slipway_identity.usecases import access
from slipway_identity.usecases.deps import SOURCE, Deps
from slipway_libs import outbox
from slipway_libs.errors import Clash, Missing, RateLimited, Unauthenticated


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str
    expires_in: int
    session_id: uuid.UUID
    user_id: uuid.UUID

    def body(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "token_type": "bearer",
            "expires_in": self.expires_in,
        }


async def sign_up(
    conn: asyncpg.Connection, deps: Deps, *, email: str, password: str, name: str
) -> User:
    email = normalize_email(email)
    name = clean_name(name, field="name")
    check_password(password, email=email, name=name)
    user = await q.insert_user(
        conn,
        user_id=uuid.uuid4(),
        email=email,
        name=name,
        password_hash=await deps.passwords.hash(password),
    )
    if user is None:
        raise Clash("EMAIL_TAKEN", "An account with this email already exists.", field="email")
    await outbox.publish(
        conn,
        UserSignedUp(user_id=user.id, email=user.email, name=user.name, created_at=user.created_at),
        subject=str(user.id),
        source=SOURCE,
    )
    return user


async def check_throttle(conn: asyncpg.Connection, deps: Deps, *, email: str, address: str) -> None:
    """429 when this address, or this account from this address, failed too often lately."""
    email, address = normalize_email(email), address_key(address)
    now = datetime.now(UTC)
    since = now - deps.login_limits.window
    if await q.signed_in_from(conn, email=email, address=address):
        by_account = await q.account_failures_from(conn, email=email, address=address, since=since)
    else:
        by_account = await q.account_failures_from_strangers(conn, email=email, since=since)
    by_address = await q.login_failures_from(conn, address=address, since=since)
    wait = retry_after_s(deps.login_limits, by_address=by_address, by_account=by_account, now=now)
    if wait is not None:
        raise RateLimited("Too many failed logins; try again later.", retry_after_s=wait)


async def verify_credentials(
    conn: asyncpg.Connection, deps: Deps, *, email: str, password: str, address: str
) -> User | None:
    """The user if the password matches; records the attempt either way, and on success the
    address as one the account signs in from."""
    email, address = normalize_email(email), address_key(address)
    user = await q.user_by_email(conn, email)
    if user is None:
        await deps.passwords.dummy_verify()
        ok = False
    else:
        ok = await deps.passwords.verify(user.password_hash, password)
    await q.record_login_attempt(conn, email=email, address=address, succeeded=ok)
    if ok:
        await q.remember_login_address(conn, email=email, address=address)
    return user if ok else None


async def open_session(conn: asyncpg.Connection, deps: Deps, user_id: uuid.UUID) -> Tokens:
    refresh = security.new_refresh_token()
    session_id = uuid.uuid4()
    await q.insert_session(
        conn,
        session_id=session_id,
        user_id=user_id,
        refresh_hash=security.sha256(refresh),
        expires_at=datetime.now(UTC) + deps.refresh_ttl,
    )
    return await _tokens(conn, deps, user_id=user_id, session_id=session_id, refresh=refresh)


async def _tokens(
    conn: asyncpg.Connection, deps: Deps, *, user_id: uuid.UUID, session_id: uuid.UUID, refresh: str
) -> Tokens:
    key = await ensure_signing_key(conn, deps)
    pem = deps.sealer.open(key.private_key_sealed, aad=key.kid.encode())
    token, expires_in = security.sign_access_token(
        kid=key.kid, private_pem=pem, user_id=user_id, session_id=session_id, ttl=deps.access_ttl
    )
    return Tokens(token, refresh, expires_in, session_id, user_id)


async def refresh(conn: asyncpg.Connection, deps: Deps, *, refresh_token: str) -> Tokens:
    """Rotate the refresh token; presenting an already-rotated one revokes the whole session."""
    digest = security.sha256(refresh_token)
    session = await q.session_by_refresh(conn, digest)
    if session is None:
        raise Unauthenticated("INVALID_REFRESH_TOKEN", "This refresh token is not valid.")
    if not session.is_live(datetime.now(UTC)):
        raise Unauthenticated("INVALID_REFRESH_TOKEN", "This session has ended.")
    new = security.new_refresh_token()
    await q.rotate_session(
        conn, session_id=session.id, old_hash=digest, new_hash=security.sha256(new)
    )
    return await _tokens(conn, deps, user_id=session.user_id, session_id=session.id, refresh=new)


async def revoke_if_reused(conn: asyncpg.Connection, *, refresh_token: str) -> None:
    """A refresh token presented after it was rotated was stolen or replayed: end the session."""
    reused = await q.session_by_previous_refresh(conn, security.sha256(refresh_token))
    if reused is not None:
        await revoke(conn, reused.id)


async def revoke(conn: asyncpg.Connection, session_id: uuid.UUID) -> None:
    row = await q.revoke_session(conn, session_id)
    if row is not None:
        await access.session_revoked(conn, row)


async def logout(conn: asyncpg.Connection, *, session_id: uuid.UUID, user_id: uuid.UUID) -> None:
    session = await q.session_by_id(conn, session_id)
    if session is None or session.user_id != user_id:
        raise Missing("SESSION_NOT_FOUND", "No such session.")
    await revoke(conn, session_id)


async def ensure_signing_key(conn: asyncpg.Connection, deps: Deps) -> SigningKey:
    key = await q.active_signing_key(conn)
    if key is not None:
        return key
    await q.lock_signing_keys(conn)
    key = await q.active_signing_key(conn)
    if key is None:
        await _new_key(conn, deps)
        key = await q.active_signing_key(conn)
    assert key is not None
    return key


async def rotate_signing_key(conn: asyncpg.Connection, deps: Deps, *, revoke_previous: bool) -> str:
    """A new active key; the previous one keeps verifying until its tokens expire, unless
    ``revoke_previous`` (a leaked key), which makes every token it signed invalid at once."""
    await q.lock_signing_keys(conn)
    await q.retire_signing_keys(conn, revoke=revoke_previous)
    return await _new_key(conn, deps)


async def _new_key(conn: asyncpg.Connection, deps: Deps) -> str:
    pair = security.new_key_pair()
    sealed = deps.sealer.seal(pair.private_pem, aad=pair.kid.encode())
    await q.insert_signing_key(conn, kid=pair.kid, sealed=sealed, jwk=pair.public_jwk)
    await access.signing_keys_changed(conn)
    return pair.kid


async def reseal_signing_keys(conn: asyncpg.Connection, deps: Deps) -> int:
    """After adding a new sealing key in front: re-encrypt every private key with it."""
    count = 0
    for key in await q.signing_keys(conn):
        sealed = key.private_key_sealed
        if deps.sealer.needs_reseal(sealed):
            await q.set_sealed_key(conn, key.kid, deps.sealer.reseal(sealed, aad=key.kid.encode()))
            count += 1
    return count
