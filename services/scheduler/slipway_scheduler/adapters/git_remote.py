"""``git ls-remote`` of a user's repository, under the rules the builder fetches by.

Invariants (those of the builder's ``adapters.sources``, which a poll must not undercut):
- Only https and ssh remotes are asked (URL or scp-like ``user@host:path``): no local path, no
  ``file://``, no other transport, no ``xxx::`` helper, nothing that reads as an option; ``--``
  comes before the positionals.
- The remote's host is resolved once and every address checked by the egress guard
  (``slipway_libs.egress``: no loopback, private, link-local or metadata address unless the
  platform's allow-list names that host:port); git then connects to a checked address (https:
  curl pinned with ``http.curloptResolve``, no redirect followed; ssh: the remote names the
  address and ``HostKeyAlias`` keeps the host key checked against the name).
- git runs with a clean environment (no system or global config, no prompt, no credential
  helper, HOME a scratch directory removed afterwards), protocols pinned to https and ssh.
- A token travels only as an ``http.extraHeader`` scoped to the remote's origin through the
  ``GIT_CONFIG_*`` environment, an SSH key only as a 0600 file in the scratch HOME; neither
  is in argv, and what a failure says is a fixed sentence naming the host, never git's output.
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import os
import re
import shlex
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from slipway_libs.egress import (
    EgressError,
    EgressPolicy,
    IPAddress,
    Resolver,
    TargetNotAllowed,
    checked_addresses,
    system_resolver,
)
from slipway_libs.process import ProcessResult, ProcessTimeout, run_process
from slipway_scheduler.domain.git_polling import PollError, Secret, head_of


@dataclass(frozen=True)
class _Remote:
    kind: str  # https | ssh
    target: str
    host: str
    port: int
    origin: str = ""  # https: scheme://host[:port]/, the scope of the auth header
    pins: tuple[str, ...] = ()
    ssh_alias: str = ""


_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_SCP_LIKE = re.compile(r"(?:[\w.~+][\w.~+-]*@)?[A-Za-z0-9][A-Za-z0-9.-]*:(?!-)[^:].*")
_ENCODED_CONTROL = re.compile(r"%(?:[01][0-9a-f]|7f)", re.I)
_BAD_BRANCH = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//|\.lock(/|$)|(^|/)\.")
_AUTH_REFUSED = re.compile(
    r"Authentication failed|could not read (Username|Password)|terminal prompts disabled"
    r"|returned error: 40[13]|Permission denied \(publickey|Invalid username or password",
    re.I,
)
_HARDENING = (
    "protocol.allow=never",
    "protocol.https.allow=always",
    "protocol.ssh.allow=always",
    "protocol.file.allow=never",
    "core.askPass=",
    "credential.helper=",
    "transfer.credentialsInUrl=die",
    "http.followRedirects=false",
)
_PASSED_THROUGH = ("PATH", "GIT_SSL_CAINFO", "SSL_CERT_FILE", "SSL_CERT_DIR", "HTTPS_PROXY",
                   "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy")  # fmt: skip


@dataclass(frozen=True)
class GitRemote:
    """Asks remotes for a branch's head (``resolver``: the system's; tests may give another)."""

    policy: EgressPolicy = field(default_factory=EgressPolicy)
    timeout_s: float = 30.0
    resolver: Resolver = system_resolver

    async def head(self, url: str, branch: str, secret: Secret) -> str:
        parsed = _parsed(url)
        _check_branch(branch)
        remote = await self._pinned(parsed)
        result = await self._ls_remote(remote, f"refs/heads/{branch}", secret)
        if result.returncode != 0:
            if any(_AUTH_REFUSED.search(line) for line in result.stderr_tail):
                raise PollError(
                    "GIT_AUTH_FAILED",
                    f"{_where(remote)} refused access to the repository: add a git credential"
                    " for it to the organization, or check the one it has",
                )
            raise PollError("UNREACHABLE", f"git ls-remote of {_where(remote)} failed")
        head = head_of(result.stdout, branch)
        if head is None:
            raise PollError("REF_NOT_FOUND", f"branch {branch!r} does not exist in the repository")
        return head

    async def _ls_remote(self, remote: _Remote, ref: str, secret: Secret) -> ProcessResult:
        with _scratch_home() as home:
            git = _Git(remote, home, secret)
            try:
                return await run_process(
                    git.argv("ls-remote", "--", remote.target, ref),
                    env=git.env(),
                    cwd=home,
                    timeout_s=self.timeout_s,
                    capture_stdout=True,
                    secrets=git.secrets(),
                )
            except ProcessTimeout:
                late = f"{_where(remote)} did not answer within {self.timeout_s:g} s"
                raise PollError("TIMEOUT", late) from None
            except OSError:  # git itself could not be started: this poll fails, the loop lives
                raise PollError("UNREACHABLE", "git could not be run on the scheduler") from None

    async def _pinned(self, remote: _Remote) -> _Remote:
        try:
            addresses = await checked_addresses(
                remote.host, remote.port, policy=self.policy, resolver=self.resolver
            )
        except TargetNotAllowed as refused:
            raise PollError("TARGET_NOT_ALLOWED", refused.message) from None
        except EgressError as failed:
            raise PollError("UNREACHABLE", failed.message) from None
        if _is_address(remote.host):
            return remote
        if remote.kind == "ssh":
            return _ssh_to(remote, addresses[0])
        listed = ",".join(_bracketed(a) for a in addresses)
        return replace(remote, pins=(f"http.curloptResolve={remote.host}:{remote.port}:{listed}",))


def _parsed(url: str) -> _Remote:
    refused = PollError("TRANSPORT_NOT_ALLOWED", "only https and ssh repositories are polled")
    if not url or len(url) > 2048 or not url.isprintable() or any(c.isspace() for c in url):
        raise refused
    if url.startswith("-") or "::" in url.split("/", 1)[0] or "\\" in url:
        raise refused
    if _ENCODED_CONTROL.search(url):
        raise refused
    if scheme := _SCHEME.match(url):
        if scheme.group(1) not in ("https", "ssh"):
            raise refused
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            raise refused from None
        host = parts.hostname or ""
        if not host or host.startswith("-") or not host.isascii() or len(parts.path) < 2:
            raise refused
        if "%" in parts.netloc:
            raise refused
        if (parts.username or "").startswith("-"):
            raise refused
        if scheme.group(1) == "ssh":
            return _Remote("ssh", url, host, port or 22)
        if parts.password is not None:
            raise refused
        origin = f"https://{parts.netloc.rpartition('@')[2]}/"
        return _Remote("https", url, host, port or 443, origin=origin)
    if _SCP_LIKE.fullmatch(url) and not url.startswith("/"):
        return _Remote("ssh", url, url.partition(":")[0].rpartition("@")[2], 22)
    raise refused


def _check_branch(branch: str) -> None:
    if (
        not branch
        or len(branch) > 255
        or not branch.isprintable()
        or branch.startswith(("-", "/"))
        or branch.endswith(("/", "."))
        or _BAD_BRANCH.search(branch)
    ):
        raise PollError("INVALID_REF", "the branch name is not a valid git branch name")


@dataclass(frozen=True)
class _Git:
    remote: _Remote
    home: Path
    secret: Secret

    def argv(self, *args: str) -> list[str]:
        config = (*_HARDENING, *self.remote.pins)
        return ["git", *(arg for item in config for arg in ("-c", item)), *args]

    def env(self) -> dict[str, str]:
        env = {name: os.environ[name] for name in _PASSED_THROUGH if name in os.environ}
        env.setdefault("PATH", os.defpath)
        env |= {
            "HOME": str(self.home),
            "LC_ALL": "C",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": "/dev/null",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ASKPASS": "",
            "SSH_ASKPASS": "",
            "SSH_ASKPASS_REQUIRE": "never",
            "GIT_ALLOW_PROTOCOL": "https:ssh",
            "GIT_SSH_COMMAND": self._ssh_command(),
        }
        if self.remote.kind == "https" and self.secret.token:
            env |= {
                "GIT_CONFIG_COUNT": "1",
                "GIT_CONFIG_KEY_0": f"http.{self.remote.origin}.extraHeader",
                "GIT_CONFIG_VALUE_0": f"Authorization: Basic {_basic(self.secret.token)}",
            }
        return env

    def secrets(self) -> tuple[str, ...]:
        token = self.secret.token
        return (token, _basic(token)) if token else ()

    def _ssh_command(self) -> str:
        command = "ssh -o BatchMode=yes"
        if self.remote.ssh_alias:  # git runs it through a shell: quoted
            alias = shlex.quote(self.remote.ssh_alias)
            command += f" -o HostKeyAlias={alias} -o CheckHostIP=no"
        if self.remote.kind != "ssh" or not self.secret.ssh_key:
            return command
        key = self.secret.ssh_key
        identity = _write_private(self.home / "identity", key if key.endswith("\n") else key + "\n")
        command += f" -i {shlex.quote(str(identity))} -o IdentitiesOnly=yes -o IdentityAgent=none"
        if self.secret.known_hosts:
            known = _write_private(self.home / "known_hosts", self.secret.known_hosts)
            command += f" -o UserKnownHostsFile={shlex.quote(str(known))}"
            command += " -o StrictHostKeyChecking=yes"
        return command


def _basic(token: str) -> str:
    return base64.b64encode(f"x-access-token:{token}".encode()).decode()


def _write_private(path: Path, text: str) -> Path:
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(text)
    return path


@contextlib.contextmanager
def _scratch_home() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="slipway-poll-") as home:  # 0700
        yield Path(home)


def _ssh_to(remote: _Remote, address: IPAddress) -> _Remote:
    if remote.target.startswith("ssh://"):
        parts = urlsplit(remote.target)
        user = f"{parts.username}@" if parts.username is not None else ""
        port = f":{parts.port}" if parts.port is not None else ""
        target = parts._replace(netloc=f"{user}{_bracketed(address)}{port}").geturl()
    else:  # scp-like: [user@]host:path
        user, at, _ = remote.target.partition(":")[0].rpartition("@")
        target = f"{user}{at}{_bracketed(address)}:{remote.target.partition(':')[2]}"
    alias = remote.host if remote.port == 22 else f"[{remote.host}]:{remote.port}"
    return replace(remote, target=target, ssh_alias=alias)


def _where(remote: _Remote) -> str:
    return remote.ssh_alias or remote.origin.removeprefix("https://").rstrip("/") or remote.host


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _bracketed(address: IPAddress) -> str:
    return f"[{address}]" if address.version == 6 else str(address)
