"""Where a repository URL points, and which of an organization's git credentials serves it. Pure.

A repository on https takes a ``token`` credential, one on ssh (``ssh://`` or ``user@host:path``)
an ``ssh_key``; a local path takes none. Among the credentials of that kind, the most specific
wins: one naming the URL's host and port, then one naming the host, then one that names no host
(it serves every host); ties go to the first by name, so the choice is stable.

One rule for every service that picks a credential (the deployer for a build, the scheduler for
a poll), so that a poll reaches the repository with the credential its build will use.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, TypeVar
from urllib.parse import urlsplit

_SCP_LIKE = re.compile(r"^(?:[^@/:]+@)?(?P<host>[A-Za-z0-9][A-Za-z0-9.-]*):(?!//)")


class Credential(Protocol):
    """What the choice reads of a service's own credential record."""

    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...  # token | ssh_key
    @property
    def host(self) -> str | None: ...  # "host" or "host:port"; None serves every host


C = TypeVar("C", bound=Credential)


@dataclass(frozen=True, slots=True)
class Remote:
    kind: str  # the credential kind it takes: token (https) | ssh_key (ssh)
    host: str
    port: int | None


def remote_of(url: str) -> Remote | None:
    """Where a repository URL points, or None (a local path, or nothing a credential serves)."""
    if url.startswith(("https://", "ssh://")):
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return None
        if not parts.hostname:
            return None
        kind = "token" if parts.scheme == "https" else "ssh_key"
        return Remote(kind, parts.hostname.lower(), port)
    scp = _SCP_LIKE.match(url)
    if scp and not url.startswith("/"):
        return Remote("ssh_key", scp.group("host").lower(), None)
    return None


def choose(credentials: Iterable[C], url: str) -> C | None:
    """The most specific credential of the URL's kind, or None."""
    remote = remote_of(url)
    if remote is None:
        return None
    ranked: list[tuple[int, str, C]] = []
    for credential in credentials:
        rank = _rank(credential.host, remote) if credential.kind == remote.kind else None
        if rank is not None:
            ranked.append((rank, credential.name.lower(), credential))
    return min(ranked, key=lambda item: item[:2])[2] if ranked else None


def _rank(host: str | None, remote: Remote) -> int | None:
    """0: names host and port; 1: names the host; 2: every host; None: another host."""
    if host is None:
        return 2
    name, _, port = host.partition(":")
    if name != remote.host:
        return None
    if not port:
        return 1
    return 0 if remote.port is not None and port == str(remote.port) else None
