"""Password hashing (argon2id) and session-token signing (Ed25519 JWTs).

Access tokens are short-lived JWTs signed with the active Ed25519 key; the ``kid`` header names
the key so that verifiers (the gateway) can pick it from the published key set. Refresh tokens
are opaque random strings, stored hashed, rotated on every use; so are invitation link tokens
(single-use).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ISSUER = "slipway-identity"
AUDIENCE = "slipway"


@dataclass(frozen=True)
class Passwords:
    """argon2id with parameters from settings (OWASP minimum: 19 MiB, t=2, p=1)."""

    hasher: PasswordHasher

    @classmethod
    def create(cls, *, time_cost: int, memory_kib: int) -> Passwords:
        return cls(PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1))

    # argon2 is deliberately slow (tens of ms): run it off the event loop (it releases the GIL)
    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self.hasher.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        return await asyncio.to_thread(self._verify, password_hash, password)

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self.hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    async def dummy_verify(self) -> None:
        """Spend the same time as a real check, so unknown emails cannot be told apart."""
        await self.verify(_DUMMY_HASH.get(self), "not-the-password")


class _DummyHash:
    def __init__(self) -> None:
        self._by_hasher: dict[int, str] = {}

    def get(self, passwords: Passwords) -> str:
        key = id(passwords.hasher)
        if key not in self._by_hasher:
            self._by_hasher[key] = passwords.hasher.hash(secrets.token_hex(8))
        return self._by_hasher[key]


_DUMMY_HASH = _DummyHash()


@dataclass(frozen=True)
class KeyPair:
    kid: str
    private_pem: bytes
    public_jwk: dict[str, Any]


def new_key_pair() -> KeyPair:
    key = Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    kid = f"k{datetime.now(UTC):%Y%m%d%H%M%S}-{secrets.token_hex(3)}"
    jwk = {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": _b64url(raw),
        "kid": kid,
        "alg": "EdDSA",
        "use": "sig",
    }
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return KeyPair(kid=kid, private_pem=pem, public_jwk=jwk)


def sign_access_token(
    *, kid: str, private_pem: bytes, user_id: uuid.UUID, session_id: uuid.UUID, ttl: timedelta
) -> tuple[str, int]:
    now = datetime.now(UTC)
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(user_id),
        "sid": str(session_id),
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    token = jwt.encode(claims, private_pem, algorithm="EdDSA", headers={"kid": kid})
    return token, int(ttl.total_seconds())


def new_refresh_token() -> str:
    return "slr_" + secrets.token_urlsafe(32)


def new_invitation_token() -> str:
    return "sli_" + secrets.token_urlsafe(32)


def token_matches(presented: str, stored_sha256: str | None) -> bool:
    """Constant-time: how much of a guess matched must not show in the answer's timing."""
    if stored_sha256 is None:
        return False
    return hmac.compare_digest(sha256(presented), stored_sha256)


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
