"""Polling remotes for new commits, the pure parts: when a branch is polled again (backoff),
what a head means, which credential a poll uses, and the remotes a poll refuses before git
runs (the builder's transport and egress rules)."""

from __future__ import annotations

import ipaddress
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from slipway_libs.egress import EgressPolicy, IPAddress
from slipway_scheduler.adapters.git_remote import GitRemote
from slipway_scheduler.domain.git_polling import (
    GitCredential,
    PollError,
    PollPolicy,
    Secret,
    Seen,
    choose,
    head_of,
    observe,
    poll_id,
)

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
POLICY = PollPolicy(
    interval=timedelta(seconds=180),
    backoff_cap=timedelta(hours=1),
    webhook_quiet=timedelta(days=1),
    lease=timedelta(seconds=90),
)
A, B = "a" * 40, "b" * 40


def test_a_success_polls_again_one_interval_later() -> None:
    assert POLICY.after_success(NOW) == NOW + timedelta(seconds=180)


def test_failures_back_off_exponentially_up_to_the_cap() -> None:
    waits = [(POLICY.after_failure(NOW, n) - NOW).total_seconds() for n in range(1, 8)]
    assert waits == [180, 360, 720, 1440, 2880, 3600, 3600]
    assert POLICY.after_failure(NOW, 10_000) == NOW + timedelta(hours=1)


def test_a_push_keeps_polling_away_for_the_quiet_period() -> None:
    assert POLICY.after_push(NOW) == NOW + timedelta(days=1)


def test_the_first_head_is_announced_a_moved_one_is_new_the_same_is_nothing() -> None:
    assert observe(None, A) is Seen.FIRST
    assert observe(A, B) is Seen.NEW
    assert observe(A, A) is Seen.SAME


def test_the_head_is_read_from_ls_remote_for_that_exact_branch() -> None:
    listing = f"{A}\trefs/heads/main-old\n{B.upper()}\trefs/heads/main\n"
    assert head_of(listing, "main") == B
    assert head_of(listing, "develop") is None
    assert head_of("not-a-sha\trefs/heads/main\n", "main") is None
    assert head_of("", "main") is None


def test_a_polled_commit_has_one_id_per_branch_and_commit() -> None:
    org = uuid.uuid4()
    assert poll_id(org, "h/o/r", "main", A) == poll_id(org, "h/o/r", "main", A)
    assert len({poll_id(org, "h/o/r", "main", c) for c in (A, B)}) == 2
    assert poll_id(org, "h/o/r", "main", A) != poll_id(uuid.uuid4(), "h/o/r", "main", A)


def _credential(name: str, kind: str, host: str | None) -> GitCredential:
    return GitCredential(
        id=uuid.uuid4(), name=name, kind=kind, host=host, secret_sealed="x", known_hosts=None
    )


def test_the_most_specific_credential_of_the_urls_kind_is_used() -> None:
    anywhere = _credential("any", "token", None)
    host = _credential("host", "token", "git.example.com")
    port = _credential("port", "token", "git.example.com:8443")
    ssh = _credential("ssh", "ssh_key", "git.example.com")
    other = _credential("other", "token", "elsewhere.example.com")
    every = [anywhere, host, port, ssh, other]
    assert choose(every, "https://git.example.com:8443/o/r.git") == port
    assert choose(every, "https://git.example.com/o/r.git") == host
    assert choose(every, "https://third.example.com/o/r.git") == anywhere
    assert choose(every, "git@git.example.com:o/r.git") == ssh
    assert choose(every, "/srv/repos/r") is None
    assert choose([other], "https://git.example.com/o/r.git") is None


async def _resolves_to(address: str) -> list[IPAddress]:
    return [ipaddress.ip_address(address)]


@pytest.mark.parametrize(
    "url",
    [
        "file:///srv/repo.git",
        "/srv/repo",
        "http://git.example.com/o/r.git",
        "ext::sh -c touch% /tmp/pwned",
        "-upload-pack=touch /tmp/x",
        "https://user:password@git.example.com/o/r.git",
        "git://git.example.com/o/r.git",
        "https://git.example.com/o/r.git%0a",
    ],
)
async def test_remotes_other_than_https_and_ssh_are_refused_before_git_runs(url: str) -> None:
    remote = GitRemote(resolver=lambda host, port: _resolves_to("140.82.112.3"))
    with pytest.raises(PollError) as refused:
        await remote.head(url, "main", Secret())
    assert refused.value.reason == "TRANSPORT_NOT_ALLOWED"


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("https://127.0.0.1:8443/o/r.git", "127.0.0.1"),
        ("https://git.internal/o/r.git", "10.0.0.5"),
        ("https://metadata.example/o/r.git", "169.254.169.254"),
        ("ssh://git@git.internal/o/r.git", "192.168.1.2"),
        ("git@git.internal:o/r.git", "::1"),
    ],
)
async def test_non_public_targets_are_refused_unless_allow_listed(url: str, address: str) -> None:
    remote = GitRemote(resolver=lambda host, port: _resolves_to(address))
    with pytest.raises(PollError) as refused:
        await remote.head(url, "main", Secret(token="tok-secret"))
    assert refused.value.reason == "TARGET_NOT_ALLOWED"
    assert "tok-secret" not in refused.value.record()


async def test_an_allow_listed_target_is_asked_and_a_missing_repository_fails_clearly() -> None:
    # nothing listens on the allow-listed port: git runs, and the failure is a fixed sentence
    policy = EgressPolicy.from_setting("127.0.0.1:9")
    remote = GitRemote(policy, timeout_s=20, resolver=lambda host, port: _resolves_to(host))
    with pytest.raises(PollError) as failed:
        await remote.head("https://127.0.0.1:9/o/r.git", "main", Secret(token="tok-secret"))
    assert failed.value.reason == "UNREACHABLE"
    assert failed.value.message == "git ls-remote of 127.0.0.1:9 failed"


async def test_an_invalid_branch_is_refused() -> None:
    remote = GitRemote(resolver=lambda host, port: _resolves_to("140.82.112.3"))
    for branch in ("--upload-pack=x", "a..b", "a b", ""):
        with pytest.raises(PollError) as refused:
            await remote.head("https://git.example.com/o/r.git", branch, Secret())
        assert refused.value.reason == "INVALID_REF"
