"""Private repositories with real git: a forge on 127.0.0.1 (``git http-backend`` behind https
that answers 401 without the right token) serves a repository; the builder's fetch gets it with
the token and fails GIT_AUTH_FAILED without it or with a wrong one — a stable reason, a message
naming the host and never the token. An SSH key is handed to ssh alone, as a 0600 file in the
fetch's scratch HOME that is gone afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from slipway_builder.adapters.sources import Egress, GitSource, SourceError, fetch, resolve_commit
from slipway_libs.egress import EgressPolicy
from slipway_libs.testing.git_server import PrivateForge, one_private_repository

pytestmark = pytest.mark.integration

TOKEN = "glpat-private-forge-token-42"


@pytest.fixture
def forge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PrivateForge]:
    with one_private_repository(tmp_path, TOKEN, "app", {"Dockerfile": "FROM scratch\n"}) as served:
        monkeypatch.setenv("GIT_SSL_CAINFO", str(served.ca_file))
        yield served


def egress(forge: PrivateForge) -> Egress:
    return Egress(policy=EgressPolicy.from_setting(forge.address))


async def test_the_token_fetches_the_private_repository(
    tmp_path: Path, forge: PrivateForge
) -> None:
    source = GitSource(url=forge.url("app"), token=TOKEN)
    fetched = await fetch(
        source, into=tmp_path / "out", local_roots=[], max_bytes=10_000_000, timeout_s=60,
        egress=egress(forge),
    )  # fmt: skip
    assert (fetched.context_dir / "Dockerfile").read_text() == "FROM scratch\n"
    assert forge.served and not forge.refused
    head = await resolve_commit(source, local_roots=[], egress=egress(forge))
    assert head == fetched.commit


@pytest.mark.parametrize("token", [None, "glpat-someone-elses-token"])
async def test_without_the_right_token_it_fails_with_a_clear_reason(
    tmp_path: Path, forge: PrivateForge, token: str | None
) -> None:
    source = GitSource(url=forge.url("app"), token=token)
    with pytest.raises(SourceError) as caught:
        await fetch(
            source, into=tmp_path / "out", local_roots=[], max_bytes=10_000_000, timeout_s=60,
            egress=egress(forge),
        )  # fmt: skip
    assert caught.value.reason == "GIT_AUTH_FAILED"
    assert not caught.value.retryable
    assert forge.address in caught.value.message and "git credential" in caught.value.message
    assert TOKEN not in caught.value.message
    assert token is None or token not in caught.value.message
    assert forge.refused and not forge.served
    assert not (tmp_path / "out").exists()


async def test_an_ssh_key_goes_to_ssh_alone_in_a_private_file_removed_afterwards(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No ssh server here: a stand-in ``ssh`` on PATH records how git runs it, and the key file
    it was given, then fails as a refused key does."""
    bin_dir, record = tmp_path / "bin", tmp_path / "record"
    bin_dir.mkdir()
    fake_ssh = bin_dir / "fake-ssh"
    fake_ssh.write_text(
        "#!/bin/sh\n"
        f'echo "$@" > {record}\n'
        'key=$(echo "$@" | sed -n "s/.*-i \\([^ ]*\\).*/\\1/p")\n'
        f'stat -c %a "$key" >> {record}; cat "$key" >> {record}\n'
        'echo "git@example: Permission denied (publickey)." >&2; exit 255\n'
    )
    fake_ssh.chmod(0o755)
    monkeypatch.setenv("GIT_SSH_COMMAND", str(fake_ssh))
    key = (
        "-----BEGIN OPENSSH PRIVATE KEY-----\n"
        "b3BlbnNzaC1rZXktdjEAAAAA\n"
        "-----END OPENSSH PRIVATE KEY-----\n"
    )
    known = "93.184.216.34 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoq\n"
    source = GitSource(url="git@93.184.216.34:acme/app.git", ssh_key=key, known_hosts=known)
    with pytest.raises(SourceError) as caught:
        await fetch(
            source, into=tmp_path / "out", local_roots=[], max_bytes=10_000_000, timeout_s=60
        )
    assert caught.value.reason == "GIT_AUTH_FAILED"
    assert "b3BlbnNzaC1rZXkt" not in caught.value.message
    argv, mode, *key_lines = record.read_text().splitlines()
    assert "-o IdentitiesOnly=yes" in argv and "-o StrictHostKeyChecking=yes" in argv
    assert mode == "600" and "\n".join(key_lines) + "\n" == key
    key_file = Path(argv.split("-i ")[1].split()[0])
    assert not key_file.exists() and not key_file.parent.exists()  # the scratch HOME is gone
