"""From an ``Authorization`` header to a principal, using only the local projection.

- ``Bearer <jwt>``: an Ed25519-signed session token; its key (``kid``) must be known and not
  revoked, its session not revoked, its audience, issuer and expiry right.
- ``Token <slw_...>``: an API token; well-formed (checksum), known by its SHA-256, not revoked,
  its organization not deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import jwt

from slipway_contracts import api_tokens
from slipway_gateway.domain.principal import Principal, TokenPrincipal, UserPrincipal
from slipway_gateway.domain.projection import AccessProjection
from slipway_libs.errors import BusinessError

ISSUER = "slipway-identity"
AUDIENCE = "slipway"


class Unauthenticated(BusinessError):
    status_code = 401
    code = "UNAUTHENTICATED"

    def __init__(self, message: str = "Sign in or pass an API token.") -> None:
        super().__init__(message, headers={"WWW-Authenticate": 'Bearer realm="slipway"'})


KeyFetcher = Callable[[], Awaitable[dict[str, Any]]]

# session tokens whose signature was verified, kept for their next requests (a client sends the
# same token many times): the EdDSA verification and the claims' decoding were most of the
# gateway's own CPU per request. Bounded: the oldest is verified again when it comes back.
VERIFIED_TOKENS = 10_000


@dataclass(frozen=True)
class _Verified:
    """A session token whose signature, audience and issuer were checked: what may change since
    (its expiry coming, its key revoked or replaced, its session ended) is checked again on
    every request."""

    principal: UserPrincipal
    kid: str
    key_x: str
    expires_at: float


class Authenticator:
    """Decides from the projection alone; the one exception is a ``kid`` it has never seen
    (a key minted a moment ago), which makes it fetch the key set once (at most every
    ``refetch_s``) instead of refusing a valid token."""

    def __init__(
        self,
        projection: AccessProjection,
        fetch_keys: KeyFetcher | None = None,
        refetch_s: float = 0.5,
    ) -> None:
        self._projection = projection
        self._keys: dict[tuple[str, str], Any] = {}
        self._fetch_keys = fetch_keys
        self._refetch_s = refetch_s
        self._last_fetch = 0.0
        self._lock = asyncio.Lock()
        self._verified: dict[str, _Verified] = {}

    async def principal(self, authorization: str | None) -> Principal:
        if not authorization:
            raise Unauthenticated()
        scheme, _, credential = authorization.partition(" ")
        credential = credential.strip()
        if scheme.lower() == "bearer" and credential:
            known = self._still_valid(credential)
            if known is not None:
                return known
            await self._know_kid(credential)
            return self._session(credential)
        if scheme.lower() == "token" and credential:
            return self._api_token(credential)
        raise Unauthenticated("Use 'Authorization: Bearer <session token>' or 'Token <API token>'.")

    async def _know_kid(self, token: str) -> None:
        try:
            kid = str(jwt.get_unverified_header(token).get("kid"))
        except jwt.PyJWTError:
            return
        if kid in self._projection.signing_keys or self._fetch_keys is None:
            return
        async with self._lock:
            if kid in self._projection.signing_keys:
                return
            if time.monotonic() - self._last_fetch < self._refetch_s:
                return
            self._last_fetch = time.monotonic()
            with contextlib.suppress(Exception):
                self._projection.apply("identity.SigningKeysChanged", await self._fetch_keys())

    def _session(self, token: str) -> UserPrincipal:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError:
            raise Unauthenticated("Malformed session token.") from None
        jwk = self._projection.verification_key(str(kid)) if kid else None
        if jwk is None:
            raise Unauthenticated("This session token's signing key is not valid any more.")
        try:
            claims = jwt.decode(
                token,
                self._key(str(kid), jwk),
                algorithms=["EdDSA"],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "sub", "sid"]},
            )
            principal = UserPrincipal(
                user_id=uuid.UUID(claims["sub"]), session_id=uuid.UUID(claims["sid"])
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("The session token expired; refresh it.") from None
        except (jwt.PyJWTError, ValueError):
            raise Unauthenticated("Invalid session token.") from None
        if self._projection.session_revoked(principal.session_id):
            raise Unauthenticated("This session has ended.")
        self._remember(token, _Verified(principal, str(kid), jwk["x"], float(claims["exp"])))
        return principal

    def _still_valid(self, token: str) -> UserPrincipal | None:
        """The principal of a token verified before, when nothing that decides has changed;
        else None (and it is forgotten): the full check then answers, with its own reason."""
        known = self._verified.get(token)
        if known is None:
            return None
        # as PyJWT: expired when `exp` is not after now
        fresh = known.expires_at > time.time()
        jwk = self._projection.verification_key(known.kid) if fresh else None
        if (
            jwk is None
            or jwk["x"] != known.key_x
            or self._projection.session_revoked(known.principal.session_id)
        ):
            del self._verified[token]
            return None
        return known.principal

    def _remember(self, token: str, verified: _Verified) -> None:
        if len(self._verified) >= VERIFIED_TOKENS:
            self._verified.pop(next(iter(self._verified)))
        self._verified[token] = verified

    def _key(self, kid: str, jwk: dict[str, Any]) -> Any:
        cache_key = (kid, jwk["x"])
        if cache_key not in self._keys:
            self._keys[cache_key] = jwt.PyJWK(jwk, algorithm="EdDSA").key
        return self._keys[cache_key]

    def _api_token(self, token: str) -> TokenPrincipal:
        if not api_tokens.is_well_formed(token):
            raise Unauthenticated("Malformed API token.")
        principal = self._projection.token(api_tokens.fingerprint(token))
        if principal is None:
            raise Unauthenticated("Unknown or revoked API token.")
        return principal
