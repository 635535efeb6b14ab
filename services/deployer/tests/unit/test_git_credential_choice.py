"""Which git credential a build uses (pure): the shared rule (``slipway_libs.git_remotes``,
tested there) over the deployer's projection, where a deleted credential has no secret."""

from __future__ import annotations

import uuid

from slipway_deployer.domain.git_credentials import GitCredential, choose

ORG = uuid.uuid4()


def credential(name: str, host: str | None = None, sealed: str | None = "c2Vh") -> GitCredential:
    return GitCredential(
        id=uuid.uuid4(),
        organization_id=ORG,
        name=name,
        kind="token",
        host=host,
        secret_sealed=sealed,
        known_hosts=None,
    )


def test_the_most_specific_credential_serves_the_build() -> None:
    anywhere, host = credential("a-anywhere"), credential("z-host", host="git.example.com")
    assert choose([anywhere, host], "https://git.example.com/a/b.git") == host
    assert choose([anywhere, host], "/srv/repos/shop") is None


def test_a_credential_without_its_secret_serves_nothing() -> None:
    gone = credential("a-gone", host="git.example.com", sealed=None)
    anywhere = credential("b-anywhere")
    assert choose([gone, anywhere], "https://git.example.com/a/b.git") == anywhere
    assert choose([gone], "https://git.example.com/a/b.git") is None
