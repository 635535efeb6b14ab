"""Login throttling rules and the one email normalization (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from slipway_identity.domain.accounts import normalize_email
from slipway_identity.domain.login_throttle import (
    UNKNOWN_ADDRESS,
    Failures,
    Limits,
    address_key,
    retry_after_s,
)
from slipway_libs.errors import InvalidInput

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
LIMITS = Limits(window=timedelta(minutes=5), per_account=5, per_address=30)
NONE = Failures(0, None)


@pytest.mark.parametrize(
    "raw",
    [
        "ada@example.com",
        " ada@example.com",
        "ada@example.com ",
        "\tAda@Example.COM\n",
        "ADA@EXAMPLE.COM",
        "\u00a0ada@example.com\u3000",  # no-break and ideographic spaces are whitespace too
    ],
)
def test_every_spelling_of_an_address_normalizes_to_one(raw: str) -> None:
    assert normalize_email(raw) == "ada@example.com"


@pytest.mark.parametrize(
    "raw",
    [
        "ada@example.com\x00",
        "ada\x00@example.com",
        "ada@exam\u202eple.com",  # bidirectional override
        "ada\u200b@example.com",  # zero-width space
        "ada@example.com\u200b",
        "ad a@example.com",
        "ada@",
        "a" * 250 + "@example.com",
    ],
)
def test_control_format_and_malformed_addresses_are_refused(raw: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        normalize_email(raw)
    assert refused.value.code == "INVALID_EMAIL"


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        (" 203.0.113.7 ", "203.0.113.7"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),
        ("not an address", UNKNOWN_ADDRESS),
        (None, UNKNOWN_ADDRESS),
    ],
)
def test_failures_count_per_address_and_per_ipv6_block(raw: str | None, key: str) -> None:
    assert address_key(raw) == key


def test_under_both_limits_nothing_waits() -> None:
    assert (
        retry_after_s(
            LIMITS,
            by_address=Failures(29, NOW),
            by_account=Failures(4, NOW),
            now=NOW,
        )
        is None
    )


def test_a_reached_limit_waits_until_its_oldest_failure_leaves_the_window() -> None:
    first = NOW - timedelta(minutes=3)
    assert retry_after_s(LIMITS, by_address=NONE, by_account=Failures(5, first), now=NOW) == 121
    assert retry_after_s(LIMITS, by_address=Failures(30, first), by_account=NONE, now=NOW) == 121


def test_the_longer_wait_wins_and_is_never_zero() -> None:
    old, recent = NOW - timedelta(minutes=5), NOW - timedelta(minutes=1)
    wait = retry_after_s(
        LIMITS, by_address=Failures(30, old), by_account=Failures(5, recent), now=NOW
    )
    assert wait == 241
    assert retry_after_s(LIMITS, by_address=Failures(30, old), by_account=NONE, now=NOW) == 1
