"""Which of an organization's git credentials a build uses. Pure.

The rule is ``slipway_libs.git_remotes`` (shared with the scheduler's polls, so that a poll
reaches a repository with the credential its build uses): by the URL's transport, then the most
specific host, ties to the first by name.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from slipway_libs import git_remotes
from slipway_libs.git_remotes import Remote, remote_of

__all__ = ["GitCredential", "Remote", "choose", "remote_of"]


@dataclass(frozen=True, slots=True, kw_only=True)
class GitCredential:
    """The projection's copy: ``secret_sealed`` is sealed with the transport key, bound to
    the credential's id (base64); the deployer never stores it in clear."""

    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    kind: str  # token | ssh_key
    host: str | None
    secret_sealed: str | None
    known_hosts: str | None


def choose(credentials: list[GitCredential], url: str) -> GitCredential | None:
    """The credential a build of ``url`` uses, or None (a deleted one, with no secret, serves
    nothing)."""
    return git_remotes.choose((c for c in credentials if c.secret_sealed is not None), url)
