"""How a service runs git against a user's repository without being turned against itself.

The parts the builder's fetches and the scheduler's polls share, so that a poll never undercuts
the rules a build fetches by:
- ``HARDENING``: ``-c`` settings pinning protocols to https and ssh, no credential helper nor
  prompt, no credentials in URLs, no redirect (a redirect could lead to a host never checked).
- ``clean_env``: no system or global config, no prompt, HOME a scratch directory (``scratch``:
  0700, removed afterwards), only the variables a caller passes through.
- ``pinned``: the remote's host resolved once and every address checked by the egress guard;
  git then connects to a checked address (https: curl pinned by ``http.curloptResolve``; ssh:
  the target names the address and ``HostKeyAlias`` keeps the host key checked against the
  name), so the name cannot resolve elsewhere between the check and the connection.
- A token travels only as an ``http.extraHeader`` scoped to the remote's origin through the
  ``GIT_CONFIG_*`` environment (``token_header_env``), never in argv; ``token_secrets`` are the
  forms a process's output is redacted of. An SSH key is only a 0600 file in the scratch HOME
  that ssh alone reads (``ssh_identity_options``).
What each service refuses, and how it words a failure, stays with it.
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import os
import re
import shlex
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from slipway_libs.egress import (
    EgressPolicy,
    IPAddress,
    Resolver,
    checked_addresses,
    system_resolver,
)

# --- what a remote URL may look like (each service words its own refusals) -----------------

SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
SCP_LIKE = re.compile(r"(?:[\w.~+][\w.~+-]*@)?[A-Za-z0-9][A-Za-z0-9.-]*:(?!-)[^:].*")
ENCODED_CONTROL = re.compile(r"%(?:[01][0-9a-f]|7f)", re.I)
# what `git check-ref-format --branch` refuses inside a branch name
_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//|\.lock(/|$)|(^|/)\.")


def is_branch_name(branch: str) -> bool:
    """``git check-ref-format --branch`` rules, plus: printable, bounded, never an option."""
    return not (
        not branch
        or len(branch) > 255
        or not branch.isprintable()
        or branch.startswith(("-", "/"))
        or branch.endswith(("/", "."))
        or _REF_FORBIDDEN.search(branch)
    )


# --- the git process ------------------------------------------------------------------------

HARDENING = (
    "protocol.allow=never",
    "protocol.https.allow=always",
    "protocol.ssh.allow=always",
    "core.askPass=",
    "credential.helper=",
    "transfer.credentialsInUrl=die",
    # a redirect could lead to a host that was never checked nor pinned
    "http.followRedirects=false",
)

# what a fetch and a checkout of a working tree add (the builder's sources, the deployer's
# charts): no hooks, fsmonitor nor submodules, no background maintenance
CHECKOUT_HARDENING = (
    *HARDENING,
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    "submodule.recurse=false",
    "fetch.recurseSubmodules=false",
    "gc.auto=0",
    "maintenance.auto=false",
    "advice.detachedHead=false",
    "init.defaultBranch=main",
)

# what git and ssh print when the remote wants credentials it did not get, or refused them
AUTH_REFUSED = re.compile(
    r"Authentication failed|could not read (Username|Password)|terminal prompts disabled"
    r"|returned error: 40[13]|Permission denied \(publickey|Invalid username or password",
    re.I,
)


def config_args(settings: Iterable[str]) -> list[str]:
    """``-c`` arguments for each ``key=value``."""
    return [arg for item in settings for arg in ("-c", item)]


def checkout_argv(*, local: bool, pins: Iterable[str], args: Iterable[str]) -> list[str]:
    """``git`` with ``CHECKOUT_HARDENING``, file:// only for a local remote (a path the caller
    checked against its allowed roots) and the remote's pins."""
    file_policy = "always" if local else "never"
    config = (*CHECKOUT_HARDENING, f"protocol.file.allow={file_policy}", *pins)
    return ["git", *config_args(config), *args]


def refused_access(stderr_tail: Iterable[str]) -> bool:
    return any(AUTH_REFUSED.search(line) for line in stderr_tail)


def clean_env(home: Path, passed_through: Iterable[str]) -> dict[str, str]:
    """The environment git runs in: ``passed_through`` from ours (when set), nothing else."""
    env = {name: os.environ[name] for name in passed_through if name in os.environ}
    env.setdefault("PATH", os.defpath)
    return env | {
        "HOME": str(home),
        "LC_ALL": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "",
        "SSH_ASKPASS": "",
        "SSH_ASKPASS_REQUIRE": "never",
        # a repository missing an object must not make git fetch it with a command its own
        # config names (CVE-2024-32004's lazy fetch; fixed in git, refused here as well)
        "GIT_NO_LAZY_FETCH": "1",
    }


def basic_credentials(token: str) -> str:
    return base64.b64encode(f"x-access-token:{token}".encode()).decode()


def token_secrets(token: str | None) -> tuple[str, ...]:
    """What a process's lines are redacted of: the token and the header's form of it."""
    return (token, basic_credentials(token)) if token else ()


def token_header_env(origin: str, token: str) -> dict[str, str]:
    """The token as an Authorization header scoped to ``origin`` (scheme://host[:port]/),
    through the environment: never in argv, never sent to another origin."""
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": f"http.{origin}.extraHeader",
        "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic_credentials(token)}",
    }


def host_key_alias_options(alias: str) -> str:
    """ssh options checking the host key against ``alias`` while connecting to an address
    (git runs GIT_SSH_COMMAND through a shell: quoted)."""
    return f" -o HostKeyAlias={shlex.quote(alias)} -o CheckHostIP=no"


def ssh_identity_options(home: Path, ssh_key: str, known_hosts: str | None) -> str:
    """ssh options using this key (and these known hosts) only, written 0600 under ``home``."""
    key = write_private(home / "identity", ssh_key if ssh_key.endswith("\n") else ssh_key + "\n")
    options = f" -i {shlex.quote(str(key))} -o IdentitiesOnly=yes -o IdentityAgent=none"
    if known_hosts:
        known = write_private(home / "known_hosts", known_hosts)
        options += f" -o UserKnownHostsFile={shlex.quote(str(known))} -o StrictHostKeyChecking=yes"
    return options


def write_private(path: Path, text: str) -> Path:
    """``text`` in a new 0600 file (one already there is kept: the same home's same secret)."""
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(text)
    return path


@contextlib.contextmanager
def scratch_home(prefix: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=prefix) as home:  # 0700
        yield Path(home)


# --- the egress guard -------------------------------------------------------------------------


@dataclass(frozen=True)
class Pinned:
    """What git is given once the remote's addresses are checked."""

    target: str  # the URL after `--` (ssh: naming the checked address)
    pins: tuple[str, ...] = ()  # https: `-c` settings pinning curl to the checked addresses
    ssh_alias: str = ""  # ssh: the name the host key is checked against


class Addressed(Protocol):
    """What ``pinned`` reads of a service's parsed remote."""

    @property
    def kind(self) -> str: ...  # https | ssh
    @property
    def target(self) -> str: ...  # the URL as given
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...


async def pinned(
    remote: Addressed, *, policy: EgressPolicy, resolver: Resolver = system_resolver
) -> Pinned:
    """Resolve the remote's host once, refuse it if any address is not allowed (``egress``'s
    TargetNotAllowed, or EgressError when it does not resolve), and pin git to the checked
    addresses (nothing to pin for an address literal)."""
    host, port, target = remote.host, remote.port, remote.target
    addresses = await checked_addresses(host, port, policy=policy, resolver=resolver)
    if _is_address(host):
        return Pinned(target)
    if remote.kind == "ssh":
        return _ssh_to(target, host, port, addresses[0])
    listed = ",".join(_bracketed(address) for address in addresses)
    return Pinned(target, pins=(f"http.curloptResolve={host}:{port}:{listed}",))


def _ssh_to(target: str, host: str, port: int, address: IPAddress) -> Pinned:
    """The same ssh remote naming ``address`` instead of the host (ssh takes one address); its
    host key stays checked against the name (and port, as known_hosts writes it)."""
    if target.startswith("ssh://"):
        parts = urlsplit(target)
        user = f"{parts.username}@" if parts.username is not None else ""
        port_part = f":{parts.port}" if parts.port is not None else ""
        target = parts._replace(netloc=f"{user}{_bracketed(address)}{port_part}").geturl()
    else:  # scp-like: [user@]host:path
        user, at, _ = target.partition(":")[0].rpartition("@")
        target = f"{user}{at}{_bracketed(address)}:{target.partition(':')[2]}"
    alias = host if port == 22 else f"[{host}]:{port}"
    return Pinned(target, ssh_alias=alias)


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _bracketed(address: IPAddress) -> str:
    return f"[{address}]" if address.version == 6 else str(address)
