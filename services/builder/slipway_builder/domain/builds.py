"""What a build is, apart from how it runs: how it ended (``Outcome``), the failure a step
reports (``BuildError``, with a stable reason code), the ids every build event carries, and the
forms of a git token the build log redacts. Pure."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any, Protocol

_FULL_SHA = re.compile(r"[0-9a-fA-F]{40}")
DOCKERFILE_MAX_BYTES = 1 << 20  # read whole to find the images it pulls


class BuildRow(Protocol):
    """A build as its table stores it, read by column name."""

    def __getitem__(self, key: str) -> Any: ...


class BuildError(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Outcome:
    image: str
    digest: str
    commit: str
    skipped: bool


def event_ids(build: BuildRow) -> dict[str, object]:
    """The ids every event of ``build`` carries."""
    return {
        "build_id": build["id"],
        "organization_id": build["organization_id"],
        "service_id": build["service_id"],
        "deployment_id": build["deployment_id"],
        "environment_id": build["environment_id"],
    }


def is_full_commit(commit: str) -> bool:
    """A whole commit sha: the image tagged with it may be in the registry already."""
    return _FULL_SHA.fullmatch(commit) is not None


def secret_forms(token: str | None) -> list[str]:
    """What the log redacts: the token, and the basic-auth header git sends it in."""
    if not token:
        return []
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    return [token, basic]
