"""A session token verified once is not verified again on its next requests, but what may have
changed since is checked on every one: its expiry, its signing key, its session."""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from slipway_gateway.access import authenticate
from slipway_gateway.access.authenticate import AUDIENCE, ISSUER, Authenticator, Unauthenticated
from slipway_gateway.domain.principal import UserPrincipal
from slipway_gateway.domain.projection import AccessProjection


def _key(kid: str) -> tuple[bytes, dict[str, Any]]:
    key = Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"}
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem, jwk


def _keys(version: int, *keys: tuple[dict[str, Any], str]) -> dict[str, Any]:
    return {
        "version": version,
        "keys": [{"kid": jwk["kid"], "status": status, "jwk": jwk} for jwk, status in keys],
    }


class Signer:
    def __init__(self) -> None:
        self.pem, self.jwk = _key("k1")
        self.projection = AccessProjection()
        self.projection.apply("identity.SigningKeysChanged", _keys(1, (self.jwk, "active")))
        self.user, self.session = uuid.uuid4(), uuid.uuid4()

    def token(self, *, ttl_s: int = 600, pem: bytes | None = None) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": str(self.user),
            "sid": str(self.session),
            "iat": now,
            "exp": now + ttl_s,
        }
        return jwt.encode(claims, pem or self.pem, algorithm="EdDSA", headers={"kid": "k1"})


@pytest.fixture
def signer() -> Signer:
    return Signer()


def _verifications(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts the signature verifications (``jwt.decode`` calls) the authenticator makes."""
    calls: list[str] = []
    decode = jwt.decode

    def counted(token: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(token)
        return decode(token, *args, **kwargs)

    monkeypatch.setattr(authenticate.jwt, "decode", counted)
    return calls


async def test_a_token_is_verified_once_then_recognised(
    signer: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _verifications(monkeypatch)
    auth = Authenticator(signer.projection)
    header = f"Bearer {signer.token()}"
    principals = [await auth.principal(header) for _ in range(3)]
    assert principals == [UserPrincipal(signer.user, signer.session)] * 3
    assert len(calls) == 1


async def test_an_ended_session_is_refused_after_its_token_was_accepted(signer: Signer) -> None:
    auth = Authenticator(signer.projection)
    header = f"Bearer {signer.token()}"
    await auth.principal(header)
    signer.projection.apply(
        "identity.SessionRevoked",
        {"session_id": str(signer.session), "expires_at": "2099-01-01T00:00:00+00:00"},
    )
    with pytest.raises(Unauthenticated, match="session has ended"):
        await auth.principal(header)


async def test_a_revoked_key_refuses_the_tokens_it_signed_after_they_were_accepted(
    signer: Signer,
) -> None:
    auth = Authenticator(signer.projection)
    header = f"Bearer {signer.token()}"
    await auth.principal(header)
    signer.projection.apply("identity.SigningKeysChanged", _keys(2, (signer.jwk, "revoked")))
    with pytest.raises(Unauthenticated, match="signing key is not valid"):
        await auth.principal(header)


async def test_a_key_replaced_under_the_same_kid_verifies_again(
    signer: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth = Authenticator(signer.projection)
    header = f"Bearer {signer.token()}"
    await auth.principal(header)
    _, other = _key("k1")
    signer.projection.apply("identity.SigningKeysChanged", _keys(2, (other, "active")))
    with pytest.raises(Unauthenticated, match="Invalid session token"):
        await auth.principal(header)


async def test_an_expired_token_is_refused_after_it_was_accepted(
    signer: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth = Authenticator(signer.projection)
    header = f"Bearer {signer.token(ttl_s=60)}"
    await auth.principal(header)
    later = time.time() + 61
    monkeypatch.setattr(authenticate.time, "time", lambda: later)
    monkeypatch.setattr(jwt.api_jwt, "datetime", _Frozen(later))
    with pytest.raises(Unauthenticated, match="expired"):
        await auth.principal(header)


async def test_the_remembered_tokens_are_bounded(
    signer: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(authenticate, "VERIFIED_TOKENS", 2)
    calls = _verifications(monkeypatch)
    auth = Authenticator(signer.projection)
    first, second, third = (f"Bearer {signer.token(ttl_s=600 + i)}" for i in range(3))
    for header in (first, second, third, first):
        await auth.principal(header)
    assert len(calls) == 4  # the first was forgotten when the third came


class _Frozen:
    """``datetime`` for PyJWT's expiry check, at a given POSIX time."""

    def __init__(self, at: float) -> None:
        self.at = at

    def now(self, tz: Any = None) -> Any:
        import datetime as real

        return real.datetime.fromtimestamp(self.at, tz)
