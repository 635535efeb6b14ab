"""The git process rules the builder and the scheduler share: the pinning to checked addresses,
the clean environment, the token's header and the SSH key's files (no git runs here; the
services' integration tests run git against real remotes)."""

from __future__ import annotations

import ipaddress
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import pytest

from slipway_libs import git_hardening as hardened
from slipway_libs.egress import EgressPolicy, IPAddress, Resolver, TargetNotAllowed

PUBLIC_V4 = ipaddress.ip_address("93.184.216.34")
PUBLIC_V6 = ipaddress.ip_address("2606:2800:220:1:248:1893:25c8:1946")
PRIVATE = ipaddress.ip_address("10.0.0.7")


@dataclass(frozen=True)
class Addressed:  # any parsed remote with these four will do
    kind: str
    target: str
    host: str
    port: int


def resolving_to(*addresses: IPAddress) -> Resolver:
    async def resolve(host: str, port: int) -> list[IPAddress]:
        return list(addresses)

    return resolve


async def test_https_pins_curl_to_every_checked_address() -> None:
    pin = await hardened.pinned(
        Addressed("https", "https://git.example.com/a/b.git", "git.example.com", 443),
        policy=EgressPolicy(), resolver=resolving_to(PUBLIC_V4, PUBLIC_V6),
    )  # fmt: skip
    assert pin.target == "https://git.example.com/a/b.git"
    assert pin.pins == (f"http.curloptResolve=git.example.com:443:{PUBLIC_V4},[{PUBLIC_V6}]",)
    assert pin.ssh_alias == ""


@pytest.mark.parametrize(
    ("target", "port", "pinned_target", "alias"),
    [
        ("git@git.example.com:a/b.git", 22, f"git@{PUBLIC_V4}:a/b.git", "git.example.com"),
        (
            "ssh://git@git.example.com:2222/a/b.git",
            2222,
            f"ssh://git@{PUBLIC_V4}:2222/a/b.git",
            "[git.example.com]:2222",
        ),
    ],
)
async def test_ssh_names_the_checked_address_and_checks_the_host_key_by_name(
    target: str, port: int, pinned_target: str, alias: str
) -> None:
    pin = await hardened.pinned(
        Addressed("ssh", target, "git.example.com", port),
        policy=EgressPolicy(), resolver=resolving_to(PUBLIC_V4),
    )  # fmt: skip
    assert (pin.target, pin.pins, pin.ssh_alias) == (pinned_target, (), alias)


async def test_a_name_resolving_to_a_private_address_is_refused() -> None:
    with pytest.raises(TargetNotAllowed):
        await hardened.pinned(
            Addressed("https", "https://git.example.com/a/b.git", "git.example.com", 443),
            policy=EgressPolicy(), resolver=resolving_to(PUBLIC_V4, PRIVATE),
        )  # fmt: skip


async def test_an_allowed_address_literal_is_left_as_it_is() -> None:
    pin = await hardened.pinned(
        Addressed("https", "https://10.0.0.7:8443/a/b.git", "10.0.0.7", 8443),
        policy=EgressPolicy.from_setting("10.0.0.7:8443"),
        resolver=resolving_to(PRIVATE),
    )  # fmt: skip
    assert pin == hardened.Pinned("https://10.0.0.7:8443/a/b.git")


def test_the_environment_holds_only_what_is_passed_through(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GIT_DIR", "/elsewhere")
    monkeypatch.setenv("SSL_CERT_FILE", "/certs.pem")
    env = hardened.clean_env(tmp_path, ("PATH", "SSL_CERT_FILE"))
    assert "GIT_DIR" not in env
    assert env["SSL_CERT_FILE"] == "/certs.pem"
    assert env["HOME"] == str(tmp_path)
    assert env["GIT_CONFIG_GLOBAL"] == "/dev/null" and env["GIT_TERMINAL_PROMPT"] == "0"
    assert env["GIT_NO_LAZY_FETCH"] == "1"


def test_the_token_travels_as_a_header_scoped_to_its_origin() -> None:
    env = hardened.token_header_env("https://git.example.com/", "s3cret")
    assert env["GIT_CONFIG_KEY_0"] == "http.https://git.example.com/.extraHeader"
    basic = hardened.basic_credentials("s3cret")
    assert env["GIT_CONFIG_VALUE_0"] == f"Authorization: Basic {basic}"
    assert hardened.token_secrets("s3cret") == ("s3cret", basic)
    assert hardened.token_secrets(None) == ()


def test_the_ssh_key_is_a_private_file_in_the_scratch_home(tmp_path: Path) -> None:
    options = hardened.ssh_identity_options(tmp_path, "KEY", "git.example.com ssh-ed25519 AAA")
    assert (tmp_path / "identity").read_text() == "KEY\n"
    for name in ("identity", "known_hosts"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o600
    assert "-o IdentitiesOnly=yes -o IdentityAgent=none" in options
    assert "-o StrictHostKeyChecking=yes" in options


def test_a_refusal_is_recognised_in_gits_last_lines() -> None:
    assert hardened.refused_access(["fatal: Authentication failed for 'https://x/'"])
    assert not hardened.refused_access(["fatal: unable to access: Could not resolve host"])


@pytest.mark.parametrize("branch", ["main", "feature/x-1", "release-2.0", "v1@2"])
def test_a_branch_name_git_accepts(branch: str) -> None:
    assert hardened.is_branch_name(branch)


@pytest.mark.parametrize(
    "branch",
    ["", "-x", "/x", "x/", "x.", "a..b", "a b", "a~1", "a:b", "x.lock", "a/.b", "a@{1}", "b" * 256],
)
def test_a_branch_name_git_refuses_or_that_reads_as_an_option(branch: str) -> None:
    assert not hardened.is_branch_name(branch)


def test_a_checkout_runs_without_hooks_or_submodules_and_file_only_for_a_local_remote() -> None:
    """The builder's sources and the deployer's git charts fetch and check out with one set of
    rules: no hooks, fsmonitor, submodules nor maintenance; file:// only for a local remote."""
    remote = hardened.checkout_argv(
        local=False, pins=("http.curloptResolve=x:443:1.2.3.4",), args=("fetch",)
    )
    local = hardened.checkout_argv(local=True, pins=(), args=("checkout", "-q", "abc"))
    assert remote[0] == "git" and remote[-1] == "fetch"
    assert "protocol.file.allow=never" in remote and "protocol.file.allow=always" not in remote
    assert "protocol.file.allow=always" in local
    assert "http.curloptResolve=x:443:1.2.3.4" in remote
    for setting in (
        "core.hooksPath=/dev/null",
        "submodule.recurse=false",
        "maintenance.auto=false",
    ):
        assert setting in remote and setting in local
    assert local[-3:] == ["checkout", "-q", "abc"]
