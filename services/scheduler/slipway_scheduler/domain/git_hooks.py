"""Incoming git webhooks: which provider sent a delivery, whether it is signed with the
endpoint's secret, and what a push says. Pure: no I/O.

- The signature is the only authentication of the public route, so it is checked over the
  raw body exactly as received, before anything is parsed, and compared in constant time:
  GitHub ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256>``, Gitea/Forgejo
  ``X-Gitea-Signature: <hex HMAC-SHA256>``, GitLab ``X-Gitlab-Token: <the secret itself>``.
- The provider is told by its event header; a delivery that names none is refused.
- A repository is matched by a key that forgets the transport: ``https://h/o/r.git``,
  ``ssh://git@h/o/r`` and ``git@h:o/r.git`` are one repository; a local path is itself.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from slipway_libs.errors import BusinessError

ZERO_COMMIT = "0" * 40
BRANCH_PREFIX = "refs/heads/"
MAX_DELIVERY_ID = 200
MAX_EVENT_NAME = 100


class Provider(StrEnum):
    GITHUB = "github"
    GITLAB = "gitlab"
    GITEA = "gitea"


# (event header, delivery id header, signature header) of each provider
_HEADERS = {
    Provider.GITEA: ("x-gitea-event", "x-gitea-delivery", "x-gitea-signature"),
    Provider.GITLAB: ("x-gitlab-event", "x-gitlab-event-uuid", "x-gitlab-token"),
    Provider.GITHUB: ("x-github-event", "x-github-delivery", "x-hub-signature-256"),
}
# every header a delivery is read from: what the gateway passes on from the public route
HEADERS: tuple[str, ...] = tuple(name for names in _HEADERS.values() for name in names)


@dataclass(frozen=True)
class Delivery:
    """A delivery as received: who sent it, its event, its id (for de-duplication)."""

    provider: Provider
    event: str
    delivery_id: str
    signature: str | None


@dataclass(frozen=True)
class Push:
    """A push to a branch: the commit the branch now points at, the repository's URLs, and
    the files its commits changed (None: the payload does not say, e.g. no ``commits``)."""

    branch: str
    commit: str
    repository_urls: tuple[str, ...]
    changed_files: frozenset[str] | None = None


def delivery(headers: Mapping[str, str], body: bytes) -> Delivery:
    """The provider, event and delivery id the headers name, or 400 ``UNKNOWN_GIT_PROVIDER``.
    Gitea also sends GitHub's headers, so it is recognised first. Without a delivery id (older
    GitLab) the body's digest stands for it: the same body sent again is the same delivery."""
    for provider, (event_header, id_header, signature_header) in _HEADERS.items():
        event = headers.get(event_header)
        if event is None:
            continue
        delivery_id = headers.get(id_header) or "sha256:" + hashlib.sha256(body).hexdigest()
        return Delivery(
            provider=provider,
            event=_printable(event, MAX_EVENT_NAME),
            delivery_id=_printable(delivery_id, MAX_DELIVERY_ID),
            signature=headers.get(signature_header),
        )
    raise BusinessError(
        "A delivery names its event in X-GitHub-Event, X-Gitlab-Event or X-Gitea-Event.",
        code="UNKNOWN_GIT_PROVIDER",
        status_code=400,
    )


def _printable(value: str, limit: int) -> str:
    if len(value) > limit or not all(" " <= c <= "~" for c in value):
        raise BusinessError(
            f"A delivery's event and id headers are printable ASCII of at most {limit} characters.",
            code="INVALID_GIT_DELIVERY",
            status_code=400,
        )
    return value


def signed(secret: str, delivery: Delivery, body: bytes) -> bool:
    """Whether the delivery carries the endpoint's secret (GitLab) or its HMAC-SHA256 of the
    raw body (GitHub, Gitea), compared in constant time."""
    given = delivery.signature
    if not given:
        return False
    if delivery.provider is Provider.GITLAB:
        return hmac.compare_digest(given.encode(), secret.encode())
    mac = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    expected = f"sha256={mac}" if delivery.provider is Provider.GITHUB else mac
    return hmac.compare_digest(given.encode(), expected.encode())


def sign(provider: Provider, secret: str, body: bytes) -> str:
    """The signature header's value a provider sends (what tests and the README show)."""
    if provider is Provider.GITLAB:
        return secret
    mac = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={mac}" if provider is Provider.GITHUB else mac


def is_push(delivery: Delivery) -> bool:
    if delivery.provider is Provider.GITLAB:
        return delivery.event == "Push Hook"
    return delivery.event == "push"


def push(body: bytes) -> Push | None:
    """The branch push a push event's body describes, or None when it is none (a tag, a
    deleted branch) or cannot be read. The three providers share these fields: ``ref``,
    ``after`` and the repository's URLs (GitHub and Gitea: ``repository.clone_url``,
    ``ssh_url``, ``html_url``; GitLab: ``project.git_http_url``, ``git_ssh_url``,
    ``web_url``)."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(payload, dict):
        return None
    ref, commit = payload.get("ref"), payload.get("after")
    if not isinstance(ref, str) or not ref.startswith(BRANCH_PREFIX):
        return None
    if not isinstance(commit, str) or not _is_commit(commit) or commit == ZERO_COMMIT:
        return None
    urls = urls_of(payload.get("repository")) + urls_of(payload.get("project"))
    if not urls:
        return None
    return Push(
        branch=ref.removeprefix(BRANCH_PREFIX),
        commit=commit.lower(),
        repository_urls=urls,
        changed_files=changed_files(payload),
    )


_URL_FIELDS = (
    "clone_url",
    "ssh_url",
    "git_url",
    "html_url",
    "git_http_url",
    "git_ssh_url",
    "web_url",
    "url",
)


def urls_of(section: Any) -> tuple[str, ...]:
    """The repository URLs a payload's ``repository`` (or GitLab ``project``) section names."""
    if not isinstance(section, dict):
        return ()
    return tuple(
        value
        for field in _URL_FIELDS
        if isinstance(value := section.get(field), str) and 0 < len(value) <= 2048
    )


_MAX_CHANGED_FILES = 10_000


def changed_files(payload: dict[str, Any]) -> frozenset[str] | None:
    """The paths the push's ``commits`` added, modified or removed (the three providers list
    them alike), or None when it lists no commits (the push cannot be filtered: GitHub leaves
    them out of very large pushes)."""
    commits = payload.get("commits")
    if not isinstance(commits, list) or not commits:
        return None
    paths: set[str] = set()
    for item in commits:
        if not isinstance(item, dict):
            return None
        for field in ("added", "modified", "removed"):
            listed = item.get(field)
            if isinstance(listed, list):
                paths.update(p for p in listed if isinstance(p, str) and 0 < len(p) <= 4096)
        if len(paths) > _MAX_CHANGED_FILES:
            return None  # too many to be worth filtering: deploy
    return frozenset(paths)


def _is_commit(value: str) -> bool:
    return len(value) == 40 and all(c in "0123456789abcdefABCDEF" for c in value)


def repository_key(url: str) -> str:
    """One name per repository, whatever the transport: ``host/path`` in lower case, without
    credentials, port, ``.git`` or trailing slashes; a local path (``/srv/r``, ``file:///srv/r``)
    is the path itself."""
    text = url.strip()
    if text.startswith("file://"):
        return _trimmed(text.removeprefix("file://"))
    if text.startswith("/"):
        return _trimmed(text)
    if "://" in text:
        parts = urlsplit(text)
        return _trimmed(f"{(parts.hostname or '').lower()}/{parts.path.lstrip('/')}").lower()
    # scp-like: [user@]host:path
    host, _, path = text.partition(":")
    return _trimmed(f"{host.rpartition('@')[2].lower()}/{path.lstrip('/')}").lower()


def _trimmed(path: str) -> str:
    path = path.rstrip("/")
    return path.removesuffix(".git").rstrip("/")
