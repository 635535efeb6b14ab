"""The API token format, shared by identity (mints) and the gateway (verifies): ``slw_`` + 30
random base62 characters + a 6-character checksum.

The prefix makes leaked tokens easy to find (secret scanners); the CRC32 checksum lets a scanner,
or the gateway, reject a mistyped or made-up token without a lookup. Tokens are stored only as
their SHA-256 (they carry 178 bits of randomness, so a slow hash adds nothing).
"""

from __future__ import annotations

import hashlib
import secrets
import zlib

PREFIX = "slw_"
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_BODY = 30
_CHECK = 6


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, rem = divmod(number, 62)
        digits.append(_ALPHABET[rem])
    return "".join(reversed(digits))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode()), _CHECK)


def generate() -> str:
    body = "".join(secrets.choice(_ALPHABET) for _ in range(_BODY))
    return f"{PREFIX}{body}{_checksum(body)}"


def is_well_formed(token: str) -> bool:
    if not token.startswith(PREFIX) or len(token) != len(PREFIX) + _BODY + _CHECK:
        return False
    body, check = token[len(PREFIX) : -_CHECK], token[-_CHECK:]
    return all(c in _ALPHABET for c in body) and _checksum(body) == check


def fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def display_prefix(token: str) -> str:
    """What lists show so that a person can recognise a token: ``slw_AbCd…``."""
    return token[: len(PREFIX) + 4]
