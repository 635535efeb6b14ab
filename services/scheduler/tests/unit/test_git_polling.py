"""Polling remotes for new commits, the pure parts: when a branch is polled again (backoff),
what a head means, which credential a poll uses, and the remotes a poll refuses before git
runs (the builder's transport and egress rules)."""

from __future__ import annotations

import ipaddress
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from slipway_libs.egress import EgressPolicy, IPAddress
from slipway_libs.testing.git_server import committed, git
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


def test_a_lasting_refusal_waits_the_cap_at_once() -> None:
    assert POLICY.after_lasting_failure(NOW) == NOW + timedelta(hours=1)


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
        "http://git.example.com/o/r.git",
        "ext::sh -c touch% /tmp/pwned",
        "-upload-pack=touch /tmp/x",
        "https://user:password@git.example.com/o/r.git",
        "git://git.example.com/o/r.git",
        "https://git.example.com/o/r.git%0a",
        "https://[::1/o/r.git",
        "ssh://[git.example.com/o/r.git",
    ],
)
async def test_remotes_other_than_https_and_ssh_are_refused_before_git_runs(url: str) -> None:
    remote = GitRemote(resolver=lambda host, port: _resolves_to("140.82.112.3"))
    with pytest.raises(PollError) as refused:
        await remote.head(url, "main", Secret())
    assert refused.value.reason == "TRANSPORT_NOT_ALLOWED"
    assert refused.value.lasting, "a URL no retry can poll waited like a passing outage"


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


# --- local repositories: polled from under SLIPWAY_GIT_LOCAL_ROOTS only (the builder's rule) --


@pytest.fixture
def roots(tmp_path: Path) -> tuple[Path, Path]:
    """(an allowed root holding the repository ``shop``, a directory beside it holding the
    repository ``secret``)."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    committed(root / "shop", {"README": "shop\n"}, "one")
    committed(outside / "secret", {"README": "secret\n"}, "one")
    return root, outside


def _local(root: Path) -> GitRemote:
    return GitRemote(local_roots=(root,), resolver=_no_resolving)


async def _no_resolving(host: str, port: int) -> list[IPAddress]:
    raise AssertionError(f"a local repository is no network target, yet {host} was resolved")


@pytest.mark.parametrize("form", ["{path}", "file://{path}", "file://localhost{path}"])
async def test_a_local_repository_under_a_root_is_polled(
    roots: tuple[Path, Path], form: str
) -> None:
    root, _ = roots
    url = form.format(path=root / "shop")
    head = await _local(root).head(url, "main", Secret(token="tok-never-sent"))
    assert head == git(root / "shop", "rev-parse", "HEAD")


async def test_a_root_reached_through_a_symlink_holds_its_real_paths(
    roots: tuple[Path, Path], tmp_path: Path
) -> None:
    root, _ = roots
    (tmp_path / "link").symlink_to(root)
    remote = GitRemote(local_roots=(tmp_path / "link",), resolver=_no_resolving)
    assert await remote.head(str(root / "shop"), "main", Secret()) == git(
        root / "shop", "rev-parse", "HEAD"
    )


async def test_a_missing_branch_of_a_local_repository_is_reported(
    roots: tuple[Path, Path],
) -> None:
    root, _ = roots
    with pytest.raises(PollError) as failed:
        await _local(root).head(str(root / "shop"), "develop", Secret())
    assert failed.value.reason == "REF_NOT_FOUND"


@pytest.mark.parametrize(
    "escape",
    [
        "outside",  # plainly elsewhere
        "dotdot",  # root/../outside/secret
        "symlink",  # root/alias -> outside/secret
        "prefix",  # root-twin/secret: a name that only starts like the root
        "no-roots",  # the setting is empty: no local path at all
    ],
)
async def test_a_local_path_outside_the_roots_is_refused_naming_the_setting(
    roots: tuple[Path, Path], escape: str
) -> None:
    root, outside = roots
    secret = outside / "secret"
    remote = _local(root)
    url = str(secret)
    if escape == "dotdot":
        url = f"{root}/../outside/secret"
    elif escape == "symlink":
        (root / "alias").symlink_to(secret)
        url = str(root / "alias")
    elif escape == "prefix":
        twin = root.with_name(root.name + "-twin")
        committed(twin / "secret", {"README": "twin\n"}, "one")
        url = str(twin / "secret")
    elif escape == "no-roots":
        remote = GitRemote(resolver=_no_resolving)
        url = str(root / "shop")
    with pytest.raises(PollError) as refused:
        await remote.head(url, "main", Secret())
    assert refused.value.reason == "TARGET_NOT_ALLOWED"
    assert "SLIPWAY_GIT_LOCAL_ROOTS" in refused.value.message
    assert refused.value.lasting, "a refusal only the settings can lift was retried as a failure"


@pytest.mark.parametrize("url", ["shop", "./shop", "file://shop", "~/shop"])
async def test_a_relative_local_path_is_refused(roots: tuple[Path, Path], url: str) -> None:
    root, _ = roots
    with pytest.raises(PollError) as refused:
        await _local(root).head(url, "main", Secret())
    assert refused.value.reason == "TRANSPORT_NOT_ALLOWED"


async def test_a_local_path_with_a_bidi_override_is_refused_before_it_is_shown(
    roots: tuple[Path, Path],
) -> None:
    """``%E2%80%AE`` decodes to U+202E: the builder refuses it; what git-polls shows must not
    carry it either."""
    root, _ = roots
    with pytest.raises(PollError) as refused:
        await _local(root).head(f"file://{root}/shop%E2%80%AE", "main", Secret())
    assert refused.value.reason == "TRANSPORT_NOT_ALLOWED"
    assert refused.value.message.isprintable() and "\u202e" not in refused.value.message


async def test_a_directory_that_is_no_repository_is_reported_as_such(
    roots: tuple[Path, Path],
) -> None:
    root, _ = roots
    (root / "plain").mkdir()
    for url in (str(root / "plain"), str(root / "missing")):
        with pytest.raises(PollError) as failed:
            await _local(root).head(url, "main", Secret())
        assert failed.value.reason == "REPOSITORY_NOT_FOUND"
        assert failed.value.message == f"{url} is not a git repository"
        assert not failed.value.lasting, "a repository created later would never be polled"
