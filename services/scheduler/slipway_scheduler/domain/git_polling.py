"""Polling the remotes of deployed applications for new commits. Pure.

A branch is polled when some deployed application builds it (its repository is given the
organization's credential the way the builder chooses one) and no webhook delivered a push for
it lately: a push re-arms the next poll ``webhook_quiet`` later, so a repository whose pushes
arrive through a webhook is not asked, and is asked again if they stop.

- One poll is one ``git ls-remote`` of ``refs/heads/<branch>``; a success re-arms it
  ``interval`` later. A failure (unreachable, refused credentials, a branch gone, a target the
  egress rules refuse) waits ``interval * 2^(failures-1)``, at most ``backoff_cap``, and
  is recorded as the branch's last error, stably worded (never git's output, never a token).
  A refusal that only the scheduler's settings or the URL itself could lift (a transport not
  polled, a local path outside ``SLIPWAY_GIT_LOCAL_ROOTS``, an invalid branch name) is
  ``lasting``: it waits ``backoff_cap`` at once, so ``git-polls`` keeps saying why the branch
  is not polled (the failure, counted and dated) while it is asked rarely and logged once per
  run of failures; settings changed by a restart are seen within ``backoff_cap``.
- What a head means (``observe``): the first head seen of a branch is announced (the
  deployer's freshness compares it with what it built) but deploys nothing, since what runs
  may be that very commit; a head other than the last one seen is a new commit: announced,
  and deployed where ``auto_deploy`` is on, as a push is; the same head is nothing.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from slipway_libs import git_remotes

_SHA = re.compile(r"[0-9a-f]{40}")
# ids of the deploy commands a poll sends: one per (branch, commit), however often it is sent
_POLL_NAMESPACE = uuid.UUID("5b0e6f3e-5c1f-4b8e-9f57-7d2f1b0c9a61")


class PollError(Exception):
    """A poll that gave no head: ``reason`` is a stable code, ``message`` a fixed sentence
    (never git's output, never a secret) recorded as the branch's last error; ``lasting``: no
    retry can succeed until the settings or the URL change."""

    def __init__(self, reason: str, message: str, *, lasting: bool = False) -> None:
        super().__init__(message)
        self.reason, self.message, self.lasting = reason, message, lasting

    def record(self) -> str:
        return f"{self.reason}: {self.message}"


@dataclass(frozen=True)
class Secret:
    """What a poll authenticates with (opened just before it, never stored in clear)."""

    token: str | None = field(default=None, repr=False)
    ssh_key: str | None = field(default=None, repr=False)
    known_hosts: str | None = None


class HeadReader(Protocol):
    """Asks a remote which commit a branch points at; raises ``PollError``."""

    async def head(self, url: str, branch: str, secret: Secret) -> str: ...


class Seen(StrEnum):
    FIRST = "first"  # no head was known: announce only
    NEW = "new"  # the branch moved: announce and deploy
    SAME = "same"


@dataclass(frozen=True)
class PollPolicy:
    interval: timedelta
    backoff_cap: timedelta
    # after a webhook's push, how long polling leaves the branch alone
    webhook_quiet: timedelta
    # how long a claimed poll is another process's (longer than a poll can take)
    lease: timedelta

    def after_success(self, now: datetime) -> datetime:
        return now + self.interval

    def after_failure(self, now: datetime, failures: int) -> datetime:
        """``failures``: consecutive failures, this one included (1 after the first)."""
        exponent = min(max(failures - 1, 0), 30)  # 2^30 intervals is past any cap
        return now + min(self.interval * (2**exponent), self.backoff_cap)

    def after_lasting_failure(self, now: datetime) -> datetime:
        return now + self.backoff_cap

    def after_push(self, now: datetime) -> datetime:
        return now + self.webhook_quiet


def observe(last_commit: str | None, head: str) -> Seen:
    if last_commit is None:
        return Seen.FIRST
    return Seen.SAME if last_commit == head else Seen.NEW


def head_of(listing: str, branch: str) -> str | None:
    """The commit ``git ls-remote`` lists for ``refs/heads/<branch>``, or None."""
    wanted = f"refs/heads/{branch}"
    for line in listing.splitlines():
        sha, _, ref = line.partition("\t")
        if ref.strip() == wanted and _SHA.fullmatch(sha.strip().lower()):
            return sha.strip().lower()
    return None


def poll_id(organization_id: uuid.UUID, repository_key: str, branch: str, commit: str) -> uuid.UUID:
    """The id standing for a push's delivery in the deploy commands of a polled commit."""
    return uuid.uuid5(_POLL_NAMESPACE, f"{organization_id}/{repository_key}/{branch}/{commit}")


# --- which credential (the deployer's rule for builds, so that a poll reaches what builds) ----


@dataclass(frozen=True, slots=True, kw_only=True)
class GitCredential:
    """The projection's copy: ``secret_sealed`` sealed with the transport key, bound to the
    credential's id (base64)."""

    id: uuid.UUID
    name: str
    kind: str  # token | ssh_key
    host: str | None
    secret_sealed: str
    known_hosts: str | None


def choose(credentials: list[GitCredential], url: str) -> GitCredential | None:
    """The credential a poll of ``url`` uses, or None: the deployer's rule for builds
    (``slipway_libs.git_remotes``), so that a poll reaches what builds."""
    return git_remotes.choose(credentials, url)
