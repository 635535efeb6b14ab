"""An organization's credentials for its private git repositories, validated. Pure.

A credential is either an https token (``kind: token``; git sends it as basic auth, the way
GitHub, GitLab and Gitea accept personal access tokens) or an SSH private key (``ssh_key``, in
OpenSSH's PEM form, with the host keys to check the server against). ``host`` limits it to the
repositories on that host; without it, it serves every host. The secret is write-only: it is
sealed at rest bound to the credential's id, and no answer, event in clear or log line carries
it — the answers name the credential, its kind, its host and when it was created.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import Field, model_validator

from slipway_libs.errors import InvalidInput
from slipway_libs.fields import Line, Model, Name, Value

Kind = Literal["token", "ssh_key"]

# a DNS name or an IPv4 address, with an optional port; lower case is compared
_HOST = re.compile(
    r"^(?=.{1,253}(:\d{1,5})?$)[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:\d{1,5})?$"
)
_TOKEN = re.compile(r"^[\x21-\x7e]{1,1024}$")  # printable ASCII, no space: one header value
_KEY_BEGIN = re.compile(r"^-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----\n")
_KEY_END = re.compile(r"\n-----END [A-Z0-9 ]*PRIVATE KEY-----\n?$")
_KNOWN_HOST_LINE = re.compile(r"^[\x20-\x7e]{1,8192}$")


@dataclass(frozen=True, slots=True, kw_only=True)
class GitCredential:
    """A credential as the repositories answer it; ``secret_sealed`` is bound to its id."""

    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    kind: Kind
    host: str | None
    secret_sealed: bytes | None
    known_hosts: str | None
    version: int
    created_at: datetime
    deleted_at: datetime | None


class GitCredentialIn(Model):
    """``token``: the https token; ``private_key``: the SSH key (with ``known_hosts``)."""

    name: Name = Field(min_length=1, max_length=100)
    kind: Kind
    host: Line | None = Field(default=None, max_length=260)
    token: Value | None = Field(default=None, max_length=1024)
    private_key: Value | None = Field(default=None, max_length=16384)
    known_hosts: Value | None = Field(default=None, max_length=65536)

    @model_validator(mode="after")
    def _one_secret(self) -> GitCredentialIn:
        if self.kind == "token" and (self.private_key is not None or self.known_hosts):
            raise ValueError("a token credential takes `token`, not `private_key`/`known_hosts`")
        if self.kind == "ssh_key" and self.token is not None:
            raise ValueError("an ssh_key credential takes `private_key`, not `token`")
        return self

    def normalized_host(self) -> str | None:
        """The host it serves (lower case), or None for every host; 422 when malformed."""
        if self.host is None or self.host == "":
            return None
        host = self.host.strip().lower()
        if not _HOST.match(host):
            raise InvalidInput(
                "INVALID_HOST",
                "The host must be a host name or address, e.g. github.com.",
                field="host",
            )
        return host

    def secret(self) -> str:
        """The token or the key, checked; 422 with the field named (never its value)."""
        if self.kind == "token":
            if self.token is None or not _TOKEN.match(self.token):
                raise InvalidInput(
                    "INVALID_TOKEN",
                    "The token must be 1 to 1024 printable ASCII characters without spaces.",
                    field="token",
                )
            return self.token
        key = (self.private_key or "").replace("\r\n", "\n")
        if not _KEY_BEGIN.match(key) or not _KEY_END.search(key):
            raise InvalidInput(
                "INVALID_PRIVATE_KEY",
                "The private key must be a PEM/OpenSSH private key without a passphrase.",
                field="private_key",
            )
        return key if key.endswith("\n") else key + "\n"

    def checked_known_hosts(self) -> str | None:
        if self.known_hosts is None or not self.known_hosts.strip():
            return None
        lines = [line.strip() for line in self.known_hosts.replace("\r\n", "\n").split("\n")]
        kept = [line for line in lines if line and not line.startswith("#")]
        if not all(_KNOWN_HOST_LINE.match(line) and len(line.split()) >= 3 for line in kept):
            raise InvalidInput(
                "INVALID_KNOWN_HOSTS",
                "known_hosts must hold OpenSSH known_hosts lines: host, key type, key.",
                field="known_hosts",
            )
        return "\n".join(kept) + "\n"


def view(row: GitCredential) -> dict[str, object]:
    """What the API answers: never the secret."""
    return {
        "id": str(row.id),
        "organization_id": str(row.organization_id),
        "name": row.name,
        "kind": row.kind,
        "host": row.host,
        "has_known_hosts": row.known_hosts is not None,
        "created_at": row.created_at.isoformat(),
        "resource_version": row.version,
    }
