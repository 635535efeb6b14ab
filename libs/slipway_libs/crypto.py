"""Sealing secrets at rest: AES-256-GCM with a key id, so keys can be rotated.

A sealed value is ``b"s1" | len(kid) | kid | nonce(12) | ciphertext+tag``. New values are sealed
with the active key; any configured key opens what it sealed, so after a rotation old and new
values both open, and a re-encryption pass moves old values to the new key. ``aad`` binds a
ciphertext to its owner (e.g. a row id): a value copied onto another row does not open.

Keys come from settings as ``kid:base64key[,kid:base64key...]``; the first is the active one.
"""

from __future__ import annotations

import base64
import os
import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_MAGIC = b"s1"


class SealError(ValueError):
    """A sealed value cannot be opened: unknown key, tampering, or wrong owner."""


@dataclass(frozen=True)
class Sealer:
    keys: dict[str, bytes]
    active_kid: str

    @classmethod
    def from_setting(cls, value: str) -> Sealer:
        keys: dict[str, bytes] = {}
        order: list[str] = []
        for item in value.split(","):
            kid, sep, encoded = item.strip().partition(":")
            if not sep or not kid:
                raise ValueError("sealing keys must look like kid:base64key[,kid:base64key]")
            key = base64.b64decode(encoded)
            if len(key) != 32:
                raise ValueError(f"sealing key {kid!r} must be 32 bytes (base64 of 32 bytes)")
            keys[kid] = key
            order.append(kid)
        if not order:
            raise ValueError("no sealing key configured")
        return cls(keys=keys, active_kid=order[0])

    def seal(self, plaintext: bytes, *, aad: bytes = b"") -> bytes:
        kid = self.active_kid.encode()
        nonce = os.urandom(12)
        sealed = AESGCM(self.keys[self.active_kid]).encrypt(nonce, plaintext, aad)
        return _MAGIC + struct.pack("B", len(kid)) + kid + nonce + sealed

    def open(self, blob: bytes, *, aad: bytes = b"") -> bytes:
        kid, nonce, sealed = _split(blob)
        key = self.keys.get(kid)
        if key is None:
            raise SealError(f"unknown sealing key {kid!r}")
        try:
            return AESGCM(key).decrypt(nonce, sealed, aad)
        except Exception as exc:
            raise SealError("sealed value does not open (tampered or wrong owner)") from exc

    def key_id(self, blob: bytes) -> str:
        return _split(blob)[0]

    def needs_reseal(self, blob: bytes) -> bool:
        return self.key_id(blob) != self.active_kid

    def reseal(self, blob: bytes, *, aad: bytes = b"") -> bytes:
        return self.seal(self.open(blob, aad=aad), aad=aad)


def _split(blob: bytes) -> tuple[str, bytes, bytes]:
    if len(blob) < 4 or blob[:2] != _MAGIC:
        raise SealError("not a sealed value")
    size = blob[2]
    kid = blob[3 : 3 + size].decode()
    nonce = blob[3 + size : 15 + size]
    return kid, nonce, blob[15 + size :]


def new_key_setting(kid: str) -> str:
    """A fresh ``kid:base64key`` item (for operators and the devstack)."""
    return f"{kid}:{base64.b64encode(os.urandom(32)).decode()}"
