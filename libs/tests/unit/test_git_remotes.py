"""Which git credential serves a repository (pure, shared by the deployer's builds and the
scheduler's polls): by the repository's transport, then the most specific host."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from slipway_libs.git_remotes import choose, remote_of


@dataclass(frozen=True)
class Credential:  # any record with name, kind and host will do
    name: str
    kind: str
    host: str | None


def credential(name: str, kind: str = "token", host: str | None = None) -> Credential:
    return Credential(name, kind, host)


@pytest.mark.parametrize(
    ("url", "kind", "host", "port"),
    [
        ("https://GitHub.com/acme/shop.git", "token", "github.com", None),
        ("https://127.0.0.1:8443/org/repo.git", "token", "127.0.0.1", 8443),
        ("ssh://git@gitlab.example.com:2222/acme/shop.git", "ssh_key", "gitlab.example.com", 2222),
        ("git@github.com:acme/shop.git", "ssh_key", "github.com", None),
    ],
)
def test_the_remote_of_a_url(url: str, kind: str, host: str, port: int | None) -> None:
    remote = remote_of(url)
    assert remote is not None
    assert (remote.kind, remote.host, remote.port) == (kind, host, port)


@pytest.mark.parametrize("url", ["/srv/repos/shop", "file:///srv/repos/shop", "https:///x", ""])
def test_a_local_or_hostless_url_takes_no_credential(url: str) -> None:
    assert remote_of(url) is None
    assert choose([credential("any")], url) is None


def test_the_most_specific_host_wins_then_the_name() -> None:
    anywhere = credential("b-anywhere")
    host = credential("z-host", host="git.example.com")
    port = credential("y-port", host="git.example.com:8443")
    other = credential("a-other", host="other.example.com")
    everything = [anywhere, host, port, other]
    assert choose(everything, "https://git.example.com:8443/a/b.git") == port
    assert choose(everything, "https://git.example.com/a/b.git") == host
    assert choose(everything, "https://elsewhere.example/a/b.git") == anywhere
    assert choose([anywhere, credential("a-anywhere")], "https://x.example/r").name == "a-anywhere"


def test_a_port_that_differs_is_another_host() -> None:
    port = credential("port", host="git.example.com:8443")
    assert choose([port], "https://git.example.com:9443/a/b.git") is None
    assert choose([port], "https://git.example.com/a/b.git") is None


def test_https_takes_a_token_and_ssh_a_key() -> None:
    token, key = credential("token"), credential("key", kind="ssh_key")
    assert choose([token, key], "https://github.com/a/b.git") == token
    assert choose([token, key], "git@github.com:a/b.git") == key
    assert choose([token], "ssh://github.com/a/b.git") is None


def test_the_credentials_may_be_any_iterable() -> None:
    token = credential("token")
    assert choose(iter([token]), "https://github.com/a/b.git") == token
