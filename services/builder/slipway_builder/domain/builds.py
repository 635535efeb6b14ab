"""What a build is, apart from how it runs: the build as its repository answers it (``Build``),
how it ended (``Outcome``), the failure a step reports (``BuildError``, with a stable reason
code), the ids every build event carries, and the forms of a git token the build log redacts.
Pure."""

from __future__ import annotations

import base64
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

_FULL_SHA = re.compile(r"[0-9a-fA-F]{40}")
DOCKERFILE_MAX_BYTES = 1 << 20  # read whole to find the images it pulls


@dataclass(frozen=True, slots=True, kw_only=True)
class Build:
    """A requested build: what to build (``source``, the deployer's ``BuildSource`` as a
    document), where it goes, and while RUNNING which worker runs it (host process and the
    tools' process group, for the next worker to stop when that one died)."""

    id: uuid.UUID
    organization_id: uuid.UUID
    environment_id: uuid.UUID | None
    service_id: uuid.UUID
    deployment_id: uuid.UUID | None
    source: dict[str, Any]
    build_args: dict[str, str]
    image_repository: str
    git_token_sealed: str | None  # sealed for this build's id, base64
    git_ssh_key_sealed: str | None  # the same, for an ssh remote
    git_known_hosts: str | None  # the ssh remote's host keys (no secret)
    status: str  # QUEUED | RUNNING | SUCCEEDED | FAILED | CANCELED
    worker_pid: int | None
    pgid: int | None


class BuildError(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class GitCredential:
    """What a build fetches a private repository with (opened: never logged nor stored)."""

    token: str | None = field(default=None, repr=False)
    ssh_key: str | None = field(default=None, repr=False)
    known_hosts: str | None = None


@dataclass(frozen=True)
class Outcome:
    image: str
    digest: str
    commit: str
    skipped: bool


def event_ids(build: Build) -> dict[str, object]:
    """The ids every event of ``build`` carries."""
    return {
        "build_id": build.id,
        "organization_id": build.organization_id,
        "service_id": build.service_id,
        "deployment_id": build.deployment_id,
        "environment_id": build.environment_id,
    }


def is_full_commit(commit: str) -> bool:
    """A whole commit sha: the image tagged with it may be in the registry already."""
    return _FULL_SHA.fullmatch(commit) is not None


def secret_forms(token: str | None, ssh_key: str | None = None) -> list[str]:
    """What the log redacts: the token, the basic-auth header git sends it in, and each line
    of an SSH key's body (a key never reaches git's output, but a Dockerfile could echo it)."""
    forms: list[str] = []
    if token:
        forms += [token, base64.b64encode(f"x-access-token:{token}".encode()).decode()]
    if ssh_key:
        forms += [line for line in ssh_key.splitlines() if len(line) >= 16 and "-----" not in line]
    return forms
