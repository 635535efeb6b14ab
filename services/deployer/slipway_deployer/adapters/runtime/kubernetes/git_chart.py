"""Helm charts from git: the chart's repository fetched at one exact commit into helm's private
work directory, the chart taken from its ``path`` there.

Invariants (the builder's fetch rules, from the same shared pieces: ``slipway_libs.git_hardening``):
- Nothing runs before ``checked`` accepted the chart: an https or ssh remote (URL or scp-like), or
  a local path whose real path lies under ``SLIPWAY_GIT_LOCAL_ROOTS``; a valid branch, a commit of
  7 to 40 hex digits; a ``path`` inside the repository (read from its root, as the catalog writes
  it: ``/charts/web``; no ``..``, not into ``.git``) — else ``CHART_PATH_INVALID``.
- The remote's host is resolved once and every address checked by the egress guard; git then
  connects to a checked address (``git_hardening.pinned``): a name rebound in between is missed.
- git runs with a clean environment (no system or global config, prompt nor credential helper,
  HOME a scratch directory removed afterwards), protocols pinned, hooks, fsmonitor and submodules
  off, ``--`` before positionals. The organization's token travels only as an ``extraHeader``
  scoped to the remote's origin (in git's environment), an SSH key only as a 0600 file in the
  scratch HOME; git's words reach a message redacted of both.
- The checkout stays under ``max_bytes`` (polled while git writes); once checked out, the chart's
  directory must really be inside the checkout and hold a ``Chart.yaml`` (``CHART_NOT_FOUND``
  naming the path otherwise), and no symlink in it may lead out of the checkout, since helm
  follows them (``CHART_PATH_INVALID``): a chart cannot read the deployer's files.
- ``commit`` None fetches the branch's head; the commit fetched is returned, so the deployment
  records it and a rollback installs the same chart.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import unquote, urlsplit

from slipway_deployer.adapters.runtime.base import FailureReason, GitAccess, RuntimeFailure
from slipway_libs import git_hardening as hardened
from slipway_libs.egress import EgressError, EgressPolicy, TargetNotAllowed
from slipway_libs.git_local import LocalPathRefused, local_repository
from slipway_libs.git_local import Refusal as LocalRefusal
from slipway_libs.process import ProcessResult, ProcessTimeout, run_process

_COMMIT = re.compile(r"[0-9a-fA-F]{7,40}")
_TRANSPORT_HELPER = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*::")
_PASSED_THROUGH = ("PATH", "GIT_SSL_CAINFO", "SSL_CERT_FILE", "SSL_CERT_DIR", "HTTPS_PROXY",
                   "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy")  # fmt: skip


@dataclass(frozen=True)
class GitChartOptions:
    """Where git charts may come from and how much they may take."""

    local_roots: tuple[Path, ...] = ()  # SLIPWAY_GIT_LOCAL_ROOTS: none allows no local path
    egress: EgressPolicy = field(default_factory=EgressPolicy)
    max_bytes: int = 100 * 1024 * 1024
    timeout_s: float = 120.0


@dataclass(frozen=True)
class GitChart:
    """The catalog's git chart, checked (``chart_dir``: relative to the checkout, "." its root)."""

    remote: _Remote
    branch: str
    commit: str | None
    chart_dir: str
    path: str  # as the spec gives it, for messages


@dataclass(frozen=True)
class _Remote:
    kind: str  # https | ssh | local
    target: str  # what git is given after `--`: the URL, or the local repository's real path
    host: str = ""
    port: int = 0
    origin: str = ""  # https: scheme://host[:port]/, the scope of the token's header
    pins: tuple[str, ...] = ()
    ssh_alias: str = ""


def checked(chart: dict[str, object], options: GitChartOptions) -> GitChart:
    """The chart's source, or ``RuntimeFailure`` before anything runs."""
    url, branch = str(chart.get("url") or ""), str(chart.get("branch") or "main")
    commit = chart.get("commit")
    path = str(chart.get("path") or "/")
    if not hardened.is_branch_name(branch) or branch in ("HEAD", "@"):
        raise _failure(FailureReason.GIT_FETCH_FAILED, f"{branch!r} is not a valid branch name")
    if commit is not None and not _COMMIT.fullmatch(str(commit)):
        raise _failure(FailureReason.GIT_FETCH_FAILED, "the commit must be 7 to 40 hex digits")
    return GitChart(
        remote=_remote(url, options.local_roots),
        branch=branch,
        commit=str(commit).lower() if commit is not None else None,
        chart_dir=chart_dir(path),
        path=path,
    )


def chart_dir(path: str) -> str:
    """The chart's directory relative to the checkout ("." for its root): a leading ``/`` is the
    repository's root; ``..`` and ``.git`` are refused (``CHART_PATH_INVALID``)."""
    if not path.isprintable() or len(path) > 1024:
        raise _failure(FailureReason.CHART_PATH_INVALID, "the chart's path has control characters")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts or (parts and parts[0] == ".git"):
        message = f"the chart's path {path!r} leaves the repository (no '..', not into .git)"
        raise _failure(FailureReason.CHART_PATH_INVALID, message)
    return posixpath.join(*parts) if parts else "."


def _remote(url: str, local_roots: Sequence[Path]) -> _Remote:
    refused = _failure(
        FailureReason.GIT_FETCH_FAILED,
        "the chart's repository must be https://, ssh://, user@host:path or a local path",
    )
    if not url or len(url) > 2048 or not url.isprintable() or any(c.isspace() for c in url):
        raise refused
    if _TRANSPORT_HELPER.match(url) or url.startswith("-") or "\\" in url:
        raise refused
    if hardened.ENCODED_CONTROL.search(url):
        raise refused
    if scheme := hardened.SCHEME.match(url):
        parts = urlsplit(url)
        if scheme.group(1) == "file" and parts.netloc in ("", "localhost"):
            return _local(unquote(parts.path), local_roots)
        if scheme.group(1) not in ("https", "ssh"):
            raise refused
        try:
            port = parts.port
        except ValueError:
            raise refused from None
        host, user = parts.hostname or "", parts.username or ""
        if not host or host.startswith("-") or user.startswith("-") or not host.isascii():
            raise refused
        if "%" in parts.netloc or len(parts.path) < 2:
            raise refused
        if scheme.group(1) == "ssh":
            return _Remote("ssh", url, host, port or 22)
        if parts.password is not None:
            raise refused  # credentials in the URL: the organization's git credential instead
        origin = f"https://{parts.netloc.rpartition('@')[2]}/"
        return _Remote("https", url, host, port or 443, origin=origin)
    if url.startswith("/"):
        return _local(url, local_roots)
    if hardened.SCP_LIKE.fullmatch(url):
        return _Remote("ssh", url, url.partition(":")[0].rpartition("@")[2], 22)
    raise refused


def _local(path: str, local_roots: Sequence[Path]) -> _Remote:
    try:
        return _Remote("local", str(local_repository(path, local_roots)))
    except LocalPathRefused as refused:
        if refused.refusal != LocalRefusal.NOT_ALLOWED:
            raise _failure(FailureReason.GIT_FETCH_FAILED, refused.message) from None
        message = f"{refused.message} (this deployer's: SLIPWAY_GIT_LOCAL_ROOTS)"
        raise _failure(FailureReason.TARGET_NOT_ALLOWED, message) from None


async def fetch(
    chart: GitChart, access: GitAccess, into: Path, options: GitChartOptions
) -> tuple[str, Path]:
    """The commit checked out in ``into`` (made here, in the caller's private directory) and the
    chart's directory in it."""
    remote = await _pinned(chart.remote, options.egress)
    _private_dir(into)
    with hardened.scratch_home("slipway-chart-git-") as home:
        git = _Git(remote, into, home, access, options)
        await git.run("init", "--quiet", "--template=")
        commit = await _fetch_commit(git, chart)
        await git.run("checkout", "--detach", "--quiet", commit)
        git.check_size()
    return commit, _located(into, chart)


async def _fetch_commit(git: _Git, chart: GitChart) -> str:
    branch_ref = f"refs/heads/{chart.branch}"
    if chart.commit is None:
        await git.fetch(branch_ref, "--depth", "1")
        return await git.rev_parse("FETCH_HEAD^{commit}")
    if len(chart.commit) == 40 and await git.fetch(chart.commit, "--depth", "1", check=False):
        return await git.rev_parse(f"{chart.commit}^{{commit}}")
    # a short commit, or a server that refuses wants by sha: the branch, then the commit in it
    await git.fetch(branch_ref)
    found = await git.run("rev-parse", "--verify", "--quiet", f"{chart.commit}^{{commit}}",
                          capture=True, check=False)  # fmt: skip
    if found.returncode != 0:
        message = f"commit {chart.commit} is not in branch {chart.branch!r} (or is ambiguous)"
        raise _failure(FailureReason.GIT_FETCH_FAILED, message)
    return found.stdout.strip()


def _located(checkout: Path, chart: GitChart) -> Path:
    """The chart's real directory, inside the checkout, with no symlink in it leading out."""
    checkout = checkout.resolve()
    candidate = checkout / chart.chart_dir
    real = Path(os.path.realpath(candidate))
    if not _inside(real, checkout):
        message = f"the chart's path {chart.path!r} leads out of the repository"
        raise _failure(FailureReason.CHART_PATH_INVALID, message)
    if not (real / "Chart.yaml").is_file():
        message = f"no chart at {chart.path!r} (no Chart.yaml there) in branch {chart.branch!r}"
        raise _failure(FailureReason.CHART_NOT_FOUND, message)
    for directory, dirs, files in os.walk(real):
        for name in (*dirs, *files):
            entry = Path(directory, name)
            if entry.is_symlink() and not _inside(Path(os.path.realpath(entry)), checkout):
                where = posixpath.join(chart.path, str(entry.relative_to(real)))
                message = f"{where} is a symlink leading out of the repository"
                raise _failure(FailureReason.CHART_PATH_INVALID, message)
    return real


def _inside(real: Path, checkout: Path) -> bool:
    return real.is_relative_to(checkout) and not real.is_relative_to(checkout / ".git")


def _private_dir(path: Path) -> None:
    path.mkdir(mode=0o700)


async def _pinned(remote: _Remote, egress: EgressPolicy) -> _Remote:
    if remote.kind == "local":
        return remote
    try:
        pin = await hardened.pinned(remote, policy=egress)
    except TargetNotAllowed as refused:
        raise _failure(FailureReason.TARGET_NOT_ALLOWED, refused.message) from None
    except EgressError as failed:
        raise _failure(FailureReason.GIT_FETCH_FAILED, failed.message) from None
    return replace(remote, target=pin.target, pins=pin.pins, ssh_alias=pin.ssh_alias)


@dataclass(frozen=True)
class _Git:
    remote: _Remote
    cwd: Path
    home: Path
    access: GitAccess
    options: GitChartOptions

    async def run(self, *args: str, capture: bool = False, check: bool = True) -> ProcessResult:
        try:
            result = await run_process(
                self._argv(*args),
                env=self._env(),
                cwd=self.cwd,
                timeout_s=self.options.timeout_s,
                capture_stdout=capture,
                watch=self.check_size,
                secrets=hardened.token_secrets(self.access.token),
            )
        except ProcessTimeout:
            late = f"git {args[0]} of {self._where()} took over {self.options.timeout_s:g} s"
            raise _failure(FailureReason.GIT_FETCH_FAILED, late) from None
        if check and result.returncode != 0:
            raise self._failed(f"git {args[0]}", result)
        return result

    async def fetch(self, refspec: str, *options: str, check: bool = True) -> bool:
        result = await self.run(
            "fetch", "--no-tags", "--no-recurse-submodules", "--quiet", *options,
            "--", self.remote.target, refspec, check=False,
        )  # fmt: skip
        if result.returncode == 0:
            return True
        if not check and not hardened.refused_access(result.stderr_tail):
            return False
        if any("couldn't find remote ref" in line for line in result.stderr_tail):
            message = f"{refspec} does not exist in {self._where()}"
            raise _failure(FailureReason.GIT_FETCH_FAILED, message)
        raise self._failed("git fetch", result)

    async def rev_parse(self, name: str) -> str:
        return (await self.run("rev-parse", "--verify", name, capture=True)).stdout.strip()

    def check_size(self) -> None:
        used = 0
        for directory, _, files in os.walk(self.cwd):
            for name in files:
                try:  # git renames its temporary files as it goes
                    used += os.lstat(os.path.join(directory, name)).st_size
                except OSError:
                    continue
        if used > self.options.max_bytes:
            message = f"the chart's repository exceeds {self.options.max_bytes} bytes"
            raise _failure(FailureReason.GIT_FETCH_FAILED, message)

    def _argv(self, *args: str) -> list[str]:
        local = self.remote.kind == "local"
        return hardened.checkout_argv(local=local, pins=self.remote.pins, args=args)

    def _env(self) -> dict[str, str]:
        ssh = "ssh -o BatchMode=yes"
        if self.remote.ssh_alias:
            ssh += hardened.host_key_alias_options(self.remote.ssh_alias)
        if self.remote.kind == "ssh" and self.access.ssh_key:
            ssh += hardened.ssh_identity_options(
                self.home, self.access.ssh_key, self.access.known_hosts
            )
        local = self.remote.kind == "local"
        env = hardened.clean_env(self.home, _PASSED_THROUGH) | {
            "GIT_SSH_COMMAND": ssh,
            "GIT_CEILING_DIRECTORIES": str(self.cwd.parent),
            "GIT_ALLOW_PROTOCOL": "https:ssh:file" if local else "https:ssh",
        }
        if self.remote.kind == "https" and self.access.token:
            env |= hardened.token_header_env(self.remote.origin, self.access.token)
        return env

    def _failed(self, what: str, result: ProcessResult) -> RuntimeFailure:
        if hardened.refused_access(result.stderr_tail):
            return _failure(
                FailureReason.GIT_AUTH_FAILED,
                f"{self._where()} refused access to the chart's repository: add a git credential"
                " for it to the organization (a token for https, an SSH key for ssh), or check"
                " the one it has",
            )
        said = "; ".join(result.stderr_tail[-3:]) or f"exit status {result.returncode}"
        return _failure(FailureReason.GIT_FETCH_FAILED, f"{what} failed: {said}")

    def _where(self) -> str:
        https = self.remote.origin.removeprefix("https://").rstrip("/")
        return self.remote.ssh_alias or https or self.remote.host or "the local repository"


def _failure(reason: FailureReason, message: str) -> RuntimeFailure:
    return RuntimeFailure(reason, message)


__all__ = ["GitChart", "GitChartOptions", "chart_dir", "checked", "fetch"]
