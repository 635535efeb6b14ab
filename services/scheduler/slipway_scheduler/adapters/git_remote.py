"""``git ls-remote`` of a user's repository, under the rules the builder fetches by.

Invariants (those of the builder's ``adapters.sources``, which a poll must not undercut; the
git process, the pinning and the token's header are ``slipway_libs.git_hardening``, shared):
- Only https and ssh remotes are asked (URL or scp-like ``user@host:path``), and local
  repositories (an absolute path, or ``file://`` naming one) whose real path (symlinks and
  ``..`` resolved) lies under one of ``local_roots`` (the builder's rule: what it may build
  from, the poll may read; no roots, no local path): no other transport, no ``xxx::`` helper,
  nothing that reads as an option; ``--`` comes before the positionals. git is given the real
  path, never the path as written. A local repository is no network target (no egress check)
  and is sent no credential; the file protocol is allowed for its ``ls-remote`` only.
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

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import unquote, urlsplit

from slipway_libs import git_hardening as hardened
from slipway_libs.egress import (
    EgressError,
    EgressPolicy,
    Resolver,
    TargetNotAllowed,
    system_resolver,
)
from slipway_libs.git_local import LocalPathRefused, local_repository
from slipway_libs.git_local import Refusal as LocalRefusal
from slipway_libs.process import ProcessResult, ProcessTimeout, run_process
from slipway_scheduler.domain.git_polling import PollError, Secret, head_of


@dataclass(frozen=True)
class _Remote:
    kind: str  # https | ssh | local
    target: str  # the URL as given; local: the repository's real path
    host: str = ""
    port: int = 0
    origin: str = ""  # https: scheme://host[:port]/, the scope of the auth header
    pins: tuple[str, ...] = ()
    ssh_alias: str = ""


_HARDENING = (*hardened.HARDENING, "protocol.file.allow=never")
_LOCAL_HARDENING = (*hardened.HARDENING, "protocol.file.allow=always")
_LOCAL_ROOTS_SETTING = "SLIPWAY_SCHEDULER_GIT_LOCAL_ROOTS or SLIPWAY_GIT_LOCAL_ROOTS"
_PASSED_THROUGH = ("PATH", "GIT_SSL_CAINFO", "SSL_CERT_FILE", "SSL_CERT_DIR", "HTTPS_PROXY",
                   "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy")  # fmt: skip


@dataclass(frozen=True)
class GitRemote:
    """Asks remotes for a branch's head (``resolver``: the system's; tests may give another;
    ``local_roots``: ``slipway_libs.git_local.roots_from_setting``)."""

    policy: EgressPolicy = field(default_factory=EgressPolicy)
    timeout_s: float = 30.0
    resolver: Resolver = system_resolver
    local_roots: tuple[Path, ...] = ()

    async def head(self, url: str, branch: str, secret: Secret) -> str:
        parsed = _parsed(url, self.local_roots)
        _check_branch(branch)
        if parsed.kind == "local":
            remote, secret = parsed, Secret()  # a path on this machine: no credential goes
        else:
            remote = await self._pinned(parsed)
        result = await self._ls_remote(remote, f"refs/heads/{branch}", secret)
        if result.returncode != 0:
            if hardened.refused_access(result.stderr_tail):
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
        with hardened.scratch_home("slipway-poll-") as home:
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
            pin = await hardened.pinned(remote, policy=self.policy, resolver=self.resolver)
        except TargetNotAllowed as refused:
            raise PollError("TARGET_NOT_ALLOWED", refused.message) from None
        except EgressError as failed:
            raise PollError("UNREACHABLE", failed.message) from None
        return replace(remote, target=pin.target, pins=pin.pins, ssh_alias=pin.ssh_alias)


def _parsed(url: str, local_roots: Sequence[Path] = ()) -> _Remote:
    refused = PollError(
        "TRANSPORT_NOT_ALLOWED",
        "only https and ssh repositories, and local ones named by an absolute path, are polled",
        lasting=True,
    )
    if not url or len(url) > 2048 or not url.isprintable() or any(c.isspace() for c in url):
        raise refused
    if url.startswith("-") or "::" in url.split("/", 1)[0] or "\\" in url:
        raise refused
    if hardened.ENCODED_CONTROL.search(url):
        raise refused
    if scheme := hardened.SCHEME.match(url):
        try:
            parts = urlsplit(url)
        except ValueError:  # e.g. an unclosed [IPv6] host
            raise refused from None
        if scheme.group(1) == "file" and parts.netloc in ("", "localhost"):
            if parts.query or parts.fragment:
                raise refused
            return _local(unquote(parts.path), local_roots)
        if scheme.group(1) not in ("https", "ssh"):
            raise refused
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
    if url.startswith("/"):
        return _local(url, local_roots)
    if hardened.SCP_LIKE.fullmatch(url):
        return _Remote("ssh", url, url.partition(":")[0].rpartition("@")[2], 22)
    raise refused


def _local(path: str, local_roots: Sequence[Path]) -> _Remote:
    """The builder's rule (``slipway_libs.git_local``): the repository and all git reads for it
    under a root."""
    try:
        return _Remote("local", str(local_repository(path, local_roots)))
    except LocalPathRefused as refused:
        reason, message = _LOCAL_REFUSALS[refused.refusal], refused.message
        if refused.refusal == LocalRefusal.NOT_ALLOWED:
            message = f"{message} ({_LOCAL_ROOTS_SETTING})"
        lasting = refused.refusal != LocalRefusal.NOT_A_REPOSITORY  # it may be made later
        raise PollError(reason, message, lasting=lasting) from None


_LOCAL_REFUSALS = {
    LocalRefusal.NOT_ABSOLUTE: "TRANSPORT_NOT_ALLOWED",
    LocalRefusal.NOT_ALLOWED: "TARGET_NOT_ALLOWED",
    LocalRefusal.NOT_A_REPOSITORY: "REPOSITORY_NOT_FOUND",
}


def _check_branch(branch: str) -> None:
    if not hardened.is_branch_name(branch):
        raise PollError(
            "INVALID_REF", "the branch name is not a valid git branch name", lasting=True
        )


@dataclass(frozen=True)
class _Git:
    remote: _Remote
    home: Path
    secret: Secret

    def argv(self, *args: str) -> list[str]:
        hardening = _LOCAL_HARDENING if self.remote.kind == "local" else _HARDENING
        return ["git", *hardened.config_args((*hardening, *self.remote.pins)), *args]

    def env(self) -> dict[str, str]:
        local = self.remote.kind == "local"
        env = hardened.clean_env(self.home, _PASSED_THROUGH) | {
            "GIT_ALLOW_PROTOCOL": "https:ssh:file" if local else "https:ssh",
            "GIT_SSH_COMMAND": self._ssh_command(),
        }
        if self.remote.kind == "https" and self.secret.token:
            env |= hardened.token_header_env(self.remote.origin, self.secret.token)
        return env

    def secrets(self) -> tuple[str, ...]:
        return hardened.token_secrets(self.secret.token)

    def _ssh_command(self) -> str:
        command = "ssh -o BatchMode=yes"
        if self.remote.ssh_alias:
            command += hardened.host_key_alias_options(self.remote.ssh_alias)
        if self.remote.kind == "ssh" and self.secret.ssh_key:
            command += hardened.ssh_identity_options(
                self.home, self.secret.ssh_key, self.secret.known_hosts
            )
        return command


def _where(remote: _Remote) -> str:
    if remote.kind == "local":
        return remote.target
    return remote.ssh_alias or remote.origin.removeprefix("https://").rstrip("/") or remote.host
