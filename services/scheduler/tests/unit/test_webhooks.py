"""Outgoing webhooks' pure rules: the signature a receiver verifies, the retry schedule over
24 hours, which events a webhook's filters let through, and the validation codes."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

import pytest

from slipway_libs.errors import InvalidInput
from slipway_scheduler.domain import webhooks as w


def test_the_signature_is_an_hmac_of_the_timestamp_and_the_body() -> None:
    body = b'{"event":"deployment.succeeded"}'
    header = w.signature("whsec_k", 1_700_000_000, body)
    expected = hmac.new(b"whsec_k", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"
    assert w.verify("whsec_k", header, body)


@pytest.mark.parametrize(
    "header",
    [
        "t=1700000001,v1=" + "0" * 64,  # another timestamp
        "v1=abc",  # no timestamp
        "t=x,v1=abc",
        "",
    ],
)
def test_a_wrong_or_malformed_signature_does_not_verify(header: str) -> None:
    body = b"{}"
    assert not w.verify("whsec_k", header, body)
    good = w.signature("whsec_k", 1_700_000_000, body)
    assert not w.verify("whsec_other", good, body)
    assert not w.verify("whsec_k", good, body + b" ")


def test_the_backoff_doubles_up_to_an_hour_and_gives_up_after_24_hours() -> None:
    delays = [w.retry_delay(n, base_s=30).total_seconds() for n in range(1, 10)]
    assert delays == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    elapsed, attempt = timedelta(0), 1
    while (delay := w.next_attempt_after(attempt, elapsed, base_s=30)) is not None:
        elapsed += delay
        attempt += 1
    assert elapsed <= w.RETRY_WINDOW
    assert elapsed + timedelta(hours=1) > w.RETRY_WINDOW  # the next one would fall past it
    assert 25 <= attempt <= 35


def _matches(**overrides: object) -> bool:
    fields: dict[str, object] = {
        "subscribed": ["deployment.failed", "deployment.succeeded"],
        "pattern": None,
        "modes": [],
        "event": "deployment.failed",
        "project_name": "api-billing",
        "environment_mode": "production",
    }
    fields.update(overrides)
    return w.matches(**fields)  # type: ignore[arg-type]


def test_filters_on_events_project_names_and_modes() -> None:
    assert _matches()
    assert not _matches(event="deployment.queued")
    assert _matches(pattern="api-*")
    assert not _matches(pattern="web-*")
    assert not _matches(pattern="API-*")  # project names are case-sensitive
    assert not _matches(pattern="api-*", project_name=None)
    assert _matches(modes=["production", "staging"])
    assert not _matches(modes=["development"])
    assert not _matches(modes=["production"], environment_mode=None)


@pytest.mark.parametrize(
    ("url", "port", "literal"),
    [
        ("https://hooks.example.com/x", 443, False),
        ("http://hooks.example.com:8080/x?y=1", 8080, False),
        ("http://10.0.0.1/x", 80, True),
        ("http://[::1]:9/x", 9, True),
    ],
)
def test_a_target_url(url: str, port: int, literal: bool) -> None:
    target = w.target(url)
    assert (target.port, target.literal_address) == (port, literal)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/",
        "example.com",
        "https://",
        "https://u:p@example.com/",
        "http://a:99999/",
    ],
)
def test_a_bad_target_url(url: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        w.target(url)
    assert refused.value.code == "INVALID_WEBHOOK_URL"


def test_events_and_modes_are_validated() -> None:
    assert w.events(["deployment.failed", "deployment.failed"]) == ["deployment.failed"]
    for bad in ([], ["deployment.exploded"]):
        with pytest.raises(InvalidInput) as refused:
            w.events(bad)
        assert refused.value.code == "INVALID_WEBHOOK_EVENT"
    with pytest.raises(InvalidInput) as refused:
        w.environment_modes(["prod"])
    assert refused.value.code == "INVALID_ENVIRONMENT_MODE"
