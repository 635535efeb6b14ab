"""Rules about accounts: email addresses, passwords, names. Pure functions."""

from __future__ import annotations

import re
import unicodedata

from slipway_libs.errors import InvalidInput

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
MIN_PASSWORD = 10
MAX_PASSWORD = 256
_COMMON = frozenset(
    {
        "password",
        "password1",
        "password12",
        "password123",
        "1234567890",
        "12345678910",
        "qwertyuiop",
        "letmein123",
        "iloveyou12",
        "admin12345",
        "welcome123",
        "changeme12",
        "passw0rd12",
        "p@ssw0rd12",
        "azertyuiop",
        "0123456789",
        "abcdefghij",
        "qwerty1234",
    }
)


def normalize_email(email: str) -> str:
    """The one form of an email address, used for every write and every lookup: sign-up, login,
    login throttling, invitations and their acceptance. Surrounding whitespace is dropped and the
    whole address lowercased: addresses are case-insensitive here, as on most platforms (and as
    the unique index on ``lower(email)`` always was), so ``Ada@Example.com `` and
    ``ada@example.com`` are one account, one throttle key and one invitee. Control and format
    characters (NUL, bidirectional overrides, zero-width spaces) are refused, not stripped: an
    address that only looks like another must not become it."""
    email = email.strip().lower()
    if (
        len(email) > 254
        or not _EMAIL.match(email)
        or any(unicodedata.category(c).startswith("C") for c in email)
    ):
        raise InvalidInput("INVALID_EMAIL", "This is not a valid email address.", field="email")
    return email


def check_password(password: str, *, email: str = "", name: str = "") -> None:
    """Refuse passwords that are short, repetitive, common, or made of the user's own name."""

    def weak(reason: str) -> InvalidInput:
        return InvalidInput("WEAK_PASSWORD", reason, field="password")

    if len(password) < MIN_PASSWORD:
        raise weak(f"Use at least {MIN_PASSWORD} characters.")
    if len(password) > MAX_PASSWORD:
        raise weak(f"Use at most {MAX_PASSWORD} characters.")
    lowered = password.lower()
    if len(set(lowered)) < 4 or lowered in _COMMON:
        raise weak("This password is too easy to guess.")
    for part in (email.partition("@")[0].lower(), name.lower().replace(" ", "")):
        if len(part) >= 4 and part in lowered:
            raise weak("Do not build the password from your name or email.")


def clean_name(value: str, *, field: str, max_length: int = 100) -> str:
    value = " ".join(value.split())
    if not value:
        raise InvalidInput("INVALID_NAME", "The name cannot be empty.", field=field)
    if len(value) > max_length:
        raise InvalidInput("INVALID_NAME", f"At most {max_length} characters.", field=field)
    return value
