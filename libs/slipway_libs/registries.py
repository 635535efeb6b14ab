"""OCI registries: the platform's own (authenticated), and the ones users name.

Invariants:
- The platform's registry requires credentials: a deployed workload runs on the host network and
  must not push or overwrite images. Each service that reaches it has its own user (the builder
  pushes, the deployer pulls; docker-registry's htpasswd gives every user both rights).
- Credentials reach buildah in a 0600 containers-auth file (``--authfile``), never in an argv
  (``--creds`` would show them to every user of the machine in /proc) nor in its environment.
- A registry a user named (a container image, a Dockerfile's ``FROM``) is a target the user chose:
  it passes the egress guard (``slipway_libs.egress``) before anything connects to it, unless it
  is the platform's own registry. The check resolves the name when the pull starts; buildah then
  resolves it again itself (its connection cannot be pinned to the checked address without
  breaking TLS verification for the name), so a name rebound between the two is not caught.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from slipway_libs.egress import EgressPolicy, Resolver, checked_addresses, system_resolver

DOCKER_HUB = "docker.io"


@dataclass(frozen=True)
class RegistryCredentials:
    username: str
    password: str = field(repr=False)

    @classmethod
    def of(cls, username: str | None, password: str | None) -> RegistryCredentials | None:
        """Both or none (a registry without authentication, e.g. a developer's own)."""
        if not username and not password:
            return None
        if not username or not password:
            raise ValueError("the registry's username and password go together")
        return cls(username, password)


def write_authfile(path: Path, registry: str, credentials: RegistryCredentials) -> Path:
    """Write (atomically, mode 0600 from its creation) the containers-auth.json buildah reads
    with ``--authfile``: credentials for ``registry`` only."""
    raw = f"{credentials.username}:{credentials.password}".encode()
    document = {"auths": {registry: {"auth": base64.b64encode(raw).decode()}}}
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # 0600
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(document, fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def registry_of(reference: str) -> str:
    """The registry of an image reference, as docker reads it: the first path component when it
    looks like a host (a dot, a port or ``localhost``), else Docker Hub."""
    first, slash, _ = reference.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first.lower()
    return DOCKER_HUB


def host_port(registry: str) -> tuple[str, int]:
    """``host[:port]`` of a registry; without a port, https's 443 (non-platform registries are
    reached over TLS only)."""
    parts = urlsplit(f"//{registry}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{registry!r} is not a registry host[:port]") from None
    if not parts.hostname or parts.path or parts.query or parts.username:
        raise ValueError(f"{registry!r} is not a registry host[:port]")
    return parts.hostname, port or 443


def is_platform(registry: str, platform_registry: str) -> bool:
    return registry.lower() == platform_registry.lower()


async def check_registry(
    registry: str,
    *,
    platform_registry: str,
    policy: EgressPolicy,
    resolver: Resolver = system_resolver,
) -> None:
    """Raise ``EgressError`` (``TargetNotAllowed``, ``TargetUnresolved``) unless the platform may
    pull from ``registry``: its own registry, or one whose every address is public (or whose
    exact host:port the operator allow-listed). Docker Hub's name is ``registry-1.docker.io``."""
    if is_platform(registry, platform_registry):
        return
    host, port = host_port("registry-1.docker.io" if registry == DOCKER_HUB else registry)
    await checked_addresses(host, port, policy=policy, resolver=resolver)


def builds_of_another(image: str, *, platform_registry: str, organization_id: str) -> bool:
    """True when ``image`` names another organization's builds: in the platform's registry,
    ``slipway/<organization>/...`` holds that organization's images only (the builder pushes
    them there), and every service may pull from it with the platform's credentials."""
    registry = registry_of(image)
    if not is_platform(registry, platform_registry):
        return False
    parts = image[len(registry) + 1 :].split("/")
    return len(parts) >= 3 and parts[0] == "slipway" and parts[1].lower() != organization_id.lower()
