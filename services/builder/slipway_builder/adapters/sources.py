"""Fetching a build's source from git, safely.

Invariants:
- Nothing runs before `validate` accepted the source: the transport is https, ssh (URL or
  scp-like) or a local path whose real path lies under an allowed root; the branch, commit,
  root path and Dockerfile path are well formed. No argument can be read as an option.
- Nor before the remote's host was resolved and every address checked by the egress guard
  (`slipway_libs.egress`: no loopback, private, link-local or metadata address unless the
  platform's allow-list names that host:port). Git then connects to a checked address, so the
  name cannot resolve elsewhere between the check and the connection (DNS rebinding): for https
  its curl is pinned to the checked addresses (`http.curloptResolve`) and follows no redirect;
  for ssh the remote names the checked address and `HostKeyAlias` keeps the host key checked
  against the name.
- Every git command runs with a clean environment (no system or global config, no prompts, no
  credential helpers, HOME in a temporary directory), protocols pinned by both `-c protocol.*`
  and GIT_ALLOW_PROTOCOL, hooks, fsmonitor and submodules off, and `--` before positionals.
- A token never reaches argv, a file or a line we hand out: it travels as an `http.extraHeader`
  scoped to the source's origin through the GIT_CONFIG_* environment variables, and every line
  and message built from git's output is redacted. An SSH key is written only into the scratch
  HOME (0700, removed with it) as a 0600 file that ssh alone reads (`-i`, no agent); with
  known_hosts, ssh checks the host against them only.
- A remote that refuses the credentials (or asks for some) fails with GIT_AUTH_FAILED and a
  fixed message naming the host, never git's output.
- Each process leads its own process group, killed as a whole on timeout or cancellation.
- The repository stays under `max_bytes` (polled during fetch and checkout, and the tree's size is
  checked before checkout); the build context and the Dockerfile stay inside the checkout after
  resolving symlinks, and no symlink in the context points outside it.
- On failure `fetch` removes its work directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import os
import posixpath
import re
import shutil
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import SplitResult, unquote, urlsplit

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
from slipway_libs.process import (
    LineSink,
    ProcessResult,
    ProcessTimeout,
)
from slipway_libs.process import run_process as _run_process

"""``on_line(stream, text)``: stream is "stdout" or "stderr"; text is one redacted line."""

_Watch = Callable[[], None] | None
_T = TypeVar("_T")


class SourceErrorReason(enum.StrEnum):
    INVALID_URL = "INVALID_URL"
    TRANSPORT_NOT_ALLOWED = "TRANSPORT_NOT_ALLOWED"
    LOCAL_PATH_NOT_ALLOWED = "LOCAL_PATH_NOT_ALLOWED"
    INVALID_REF = "INVALID_REF"
    REF_NOT_FOUND = "REF_NOT_FOUND"
    CLONE_FAILED = "CLONE_FAILED"
    REPOSITORY_TOO_LARGE = "REPOSITORY_TOO_LARGE"
    ROOT_PATH_NOT_FOUND = "ROOT_PATH_NOT_FOUND"
    DOCKERFILE_NOT_FOUND = "DOCKERFILE_NOT_FOUND"
    SYMLINK_ESCAPES_CONTEXT = "SYMLINK_ESCAPES_CONTEXT"
    TIMEOUT = "TIMEOUT"
    TARGET_NOT_ALLOWED = "TARGET_NOT_ALLOWED"
    GIT_AUTH_FAILED = "GIT_AUTH_FAILED"


Reason = SourceErrorReason
_RETRYABLE = frozenset({Reason.CLONE_FAILED, Reason.TIMEOUT})


class SourceError(Exception):
    """A source that cannot be fetched: `reason` is a stable code, `message` never has a token."""

    def __init__(self, reason: SourceErrorReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message

    @property
    def retryable(self) -> bool:
        """Network failures and timeouts may pass on a retry; everything else is permanent."""
        return self.reason in _RETRYABLE


@dataclass(frozen=True)
class GitSource:
    url: str
    branch: str = "main"
    commit: str | None = None
    root_path: str = "/"
    dockerfile_path: str = "Dockerfile"
    token: str | None = field(default=None, repr=False)
    ssh_key: str | None = field(default=None, repr=False)
    known_hosts: str | None = None


@dataclass(frozen=True)
class FetchedSource:
    commit: str
    workdir: Path
    context_dir: Path
    dockerfile: Path


# --- validation (pure: nothing is executed) -------------------------------------------------


@dataclass(frozen=True)
class _Remote:
    kind: Literal["https", "ssh", "local"]
    target: str  # what git is given after `--`: the URL, or the local repository's real path
    origin: str = ""  # https only: scheme://host[:port]/, the scope of the auth header
    host: str = ""  # https and ssh: the host git connects to, checked by the egress guard
    port: int = 0
    pins: tuple[str, ...] = ()  # https: `-c` settings pinning curl to the checked addresses
    ssh_alias: str = ""  # ssh: the name the host key is checked against (target names the IP)


_TRANSPORT_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*::")
_OPTION_TEXT = re.compile(
    r"--(upload-pack|receive-pack|exec|config|template|separate-git-dir|reference)", re.I
)
_COMMIT = re.compile(r"[0-9a-fA-F]{7,40}")


def validate(source: GitSource, *, local_roots: Sequence[Path]) -> None:
    """Raise SourceError unless the source is safe to fetch; runs nothing."""
    _checked_remote(source, local_roots)


def _checked_remote(source: GitSource, local_roots: Sequence[Path]) -> _Remote:
    remote = _parse_url(source.url, local_roots)
    _check_branch(source.branch)
    if source.commit is not None and not _COMMIT.fullmatch(source.commit):
        raise SourceError(Reason.INVALID_REF, "the commit must be 7 to 40 hexadecimal characters")
    _relative_paths(source)
    return remote


def _parse_url(url: str, local_roots: Sequence[Path]) -> _Remote:
    if not url or len(url) > 2048:
        raise SourceError(Reason.INVALID_URL, "the repository URL is empty or too long")
    if _TRANSPORT_PREFIX.match(url):
        raise SourceError(Reason.TRANSPORT_NOT_ALLOWED, "transport helpers (xxx::) are refused")
    if (
        not url.isprintable()
        or any(c.isspace() for c in url)
        or hardened.ENCODED_CONTROL.search(url)
    ):
        raise SourceError(Reason.INVALID_URL, "the URL contains whitespace or control text")
    if url.startswith("-") or _OPTION_TEXT.search(url) or "\\" in url:
        raise SourceError(Reason.INVALID_URL, "the repository URL looks like a command-line option")
    if scheme := hardened.SCHEME.match(url):
        return _parse_scheme_url(scheme.group(1), url, local_roots)
    if url.startswith("/"):
        return _local(url, local_roots)
    if hardened.SCP_LIKE.fullmatch(url):
        host = url.partition(":")[0].rpartition("@")[2]
        return _Remote("ssh", url, host=host, port=22)
    raise SourceError(
        Reason.INVALID_URL, "use https://, ssh://, user@host:path or an absolute path"
    )


def _parse_scheme_url(scheme: str, url: str, local_roots: Sequence[Path]) -> _Remote:
    parts = urlsplit(url)
    if scheme == "file":
        if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
            raise SourceError(Reason.INVALID_URL, "a file:// URL names a path on this machine only")
        return _local(unquote(parts.path), local_roots)
    if scheme not in ("https", "ssh"):
        raise SourceError(Reason.TRANSPORT_NOT_ALLOWED, f"{scheme}:// is refused: use https or ssh")
    _check_netloc(parts)
    if len(parts.path) < 2:
        raise SourceError(Reason.INVALID_URL, "the repository URL has no path")
    host = parts.hostname or ""
    if scheme == "ssh":
        return _Remote("ssh", url, host=host, port=parts.port or 22)
    if parts.password is not None:
        raise SourceError(Reason.INVALID_URL, "credentials in the URL are refused: use the token")
    origin = f"https://{parts.netloc.rpartition('@')[2]}/"
    return _Remote("https", url, origin=origin, host=host, port=parts.port or 443)


def _check_netloc(parts: SplitResult) -> None:
    try:
        parts.port  # noqa: B018 -- parsing it validates it
    except ValueError:
        raise SourceError(Reason.INVALID_URL, "the repository URL has an invalid port") from None
    host, user = parts.hostname or "", parts.username or ""
    if not host or host.startswith("-") or user.startswith("-") or "%" in parts.netloc:
        raise SourceError(Reason.INVALID_URL, "the repository URL has an invalid host or user")
    if not host.isascii():  # git's curl would look up the IDNA form, which the pin would miss
        raise SourceError(Reason.INVALID_URL, "give the host name in its ASCII (punycode) form")


def _local(path: str, local_roots: Sequence[Path]) -> _Remote:
    try:
        return _Remote("local", str(local_repository(path, local_roots)))
    except LocalPathRefused as refused:
        raise SourceError(_LOCAL_REFUSALS[refused.refusal], refused.message) from None


_LOCAL_REFUSALS = {
    LocalRefusal.NOT_ABSOLUTE: Reason.INVALID_URL,
    LocalRefusal.NOT_ALLOWED: Reason.LOCAL_PATH_NOT_ALLOWED,
    # as git's own failure to read one was (a build may be retried once the path exists)
    LocalRefusal.NOT_A_REPOSITORY: Reason.CLONE_FAILED,
}


def _check_branch(branch: str) -> None:
    # the shared rules, and never HEAD: a build names the branch it builds
    if not hardened.is_branch_name(branch) or branch in ("HEAD", "@"):
        raise SourceError(Reason.INVALID_REF, "the branch name is not a valid git branch name")


def _relative_paths(source: GitSource) -> tuple[str, str]:
    """(root, dockerfile) relative to the checkout; neither may leave it or enter `.git`."""
    root = _inside_checkout(source.root_path or "/")
    if root is None:
        raise SourceError(Reason.ROOT_PATH_NOT_FOUND, f"root path {source.root_path!r} is invalid")
    dockerfile = source.dockerfile_path.lstrip("/")
    joined = _inside_checkout(posixpath.join(root, dockerfile)) if dockerfile else None
    if joined is None or joined == ".":
        raise SourceError(
            Reason.DOCKERFILE_NOT_FOUND, f"Dockerfile path {source.dockerfile_path!r} is invalid"
        )
    return root, joined


def _inside_checkout(path: str) -> str | None:
    if not path.isprintable():
        return None
    relative = posixpath.normpath(path.lstrip("/") or ".")
    first = relative.split("/", 1)[0]
    return None if first in ("..", ".git") else relative


# --- running processes ------------------------------------------------------------------------


async def run_process(argv: Sequence[str], **kwargs: Any) -> ProcessResult:
    """``process.run_process``, with a timeout reported as a source error (TIMEOUT)."""
    try:
        return await _run_process(argv, **kwargs)
    except ProcessTimeout as exc:
        raise SourceError(Reason.TIMEOUT, str(exc)) from None


async def _within(timeout_s: float | None, work: Awaitable[_T], what: str) -> _T:
    try:
        async with asyncio.timeout(timeout_s):
            return await work
    except TimeoutError:
        raise SourceError(Reason.TIMEOUT, f"{what} did not finish within {timeout_s:g} s") from None


# --- git --------------------------------------------------------------------------------------

_PASSED_THROUGH = (
    "PATH", "SSH_AUTH_SOCK", "GIT_SSH_COMMAND", "GIT_SSL_CAINFO", "SSL_CERT_FILE", "SSL_CERT_DIR",
    "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy",
)  # fmt: skip


@dataclass(frozen=True)
class _Git:
    remote: _Remote
    cwd: Path
    home: Path
    on_line: LineSink | None
    token: str | None = field(default=None, repr=False)
    ssh_options: str = ""  # the key (and known hosts) files in the scratch HOME

    def argv(self, *args: str) -> list[str]:
        local = self.remote.kind == "local"
        return hardened.checkout_argv(local=local, pins=self.remote.pins, args=args)

    def env(self) -> dict[str, str]:
        env = hardened.clean_env(self.home, _PASSED_THROUGH)
        # an operator's GIT_SSH_COMMAND (passed through) is kept, with our options after it
        env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
        if self.remote.ssh_alias:
            env["GIT_SSH_COMMAND"] += hardened.host_key_alias_options(self.remote.ssh_alias)
        if self.remote.kind == "ssh" and self.ssh_options:
            env["GIT_SSH_COMMAND"] += self.ssh_options
        env |= {
            "GIT_CEILING_DIRECTORIES": str(self.cwd.parent),
            "GIT_ALLOW_PROTOCOL": "https:ssh:file" if self.remote.kind == "local" else "https:ssh",
        }
        if self.remote.kind == "https" and self.token:
            env |= hardened.token_header_env(self.remote.origin, self.token)
        return env

    async def run(
        self, *args: str, capture: bool = False, check: bool = True, watch: _Watch = None
    ) -> ProcessResult:
        result = await run_process(
            self.argv(*args),
            env=self.env(),
            cwd=self.cwd,
            on_line=self.on_line,
            capture_stdout=capture,
            watch=watch,
            secrets=hardened.token_secrets(self.token),
        )
        if check and result.returncode != 0:
            self._raise_if_refused(result)
            raise SourceError(Reason.CLONE_FAILED, _failure(f"git {args[0]}", result))
        return result

    def _raise_if_refused(self, result: ProcessResult) -> None:
        if hardened.refused_access(result.stderr_tail):
            https = self.remote.origin.removeprefix("https://").rstrip("/")
            where = self.remote.ssh_alias or https or self.remote.host or "the remote"
            raise SourceError(
                Reason.GIT_AUTH_FAILED,
                f"{where} refused access to the repository: add a git credential for it to the"
                " organization (a token for https, an SSH key for ssh), or check the one it has",
            )

    async def fetch(self, refspec: str, *options: str, watch: _Watch = None) -> None:
        result = await self.run(
            "fetch", "--no-tags", "--no-recurse-submodules", "--progress", *options,
            "--", self.remote.target, refspec, check=False, watch=watch,
        )  # fmt: skip
        if result.returncode == 0:
            return
        if any("couldn't find remote ref" in line for line in result.stderr_tail):
            raise SourceError(Reason.REF_NOT_FOUND, f"{refspec} does not exist in the repository")
        self._raise_if_refused(result)
        raise SourceError(Reason.CLONE_FAILED, _failure("git fetch", result))


def _failure(what: str, result: ProcessResult) -> str:
    detail = "; ".join(result.stderr_tail[-3:]) or f"exit status {result.returncode}"
    return f"{what} failed: {detail}"


def _scratch_home() -> contextlib.AbstractContextManager[Path]:
    return hardened.scratch_home("slipway-git-")


def _git(
    remote: _Remote, cwd: Path, home: Path, on_line: LineSink | None, source: GitSource
) -> _Git:
    """The git runner of one fetch: an SSH key goes into ``home`` (removed with it)."""
    return _Git(remote, cwd, home, on_line, source.token, _ssh_identity(remote, home, source))


def _ssh_identity(remote: _Remote, home: Path, source: GitSource) -> str:
    """ssh options using the source's key (and known hosts) only, written 0600 under ``home``."""
    if remote.kind != "ssh" or not source.ssh_key:
        return ""
    return hardened.ssh_identity_options(home, source.ssh_key, source.known_hosts)


# --- the egress guard ------------------------------------------------------------------------


@dataclass(frozen=True)
class Egress:
    """Which non-public targets git may reach (the platform's allow-list), and how names are
    resolved (the system's resolver; tests give a stub)."""

    policy: EgressPolicy = field(default_factory=EgressPolicy)
    resolver: Resolver = system_resolver


async def _pinned(remote: _Remote, egress: Egress) -> _Remote:
    """Resolve the remote's host once, refuse it if any address is not allowed, and pin git to
    the checked addresses (nothing to pin for a local path or an address literal)."""
    if remote.kind == "local":
        return remote
    try:
        pin = await hardened.pinned(remote, policy=egress.policy, resolver=egress.resolver)
    except TargetNotAllowed as refused:
        raise SourceError(Reason.TARGET_NOT_ALLOWED, refused.message) from None
    except EgressError as failed:  # a name that does not resolve (now): worth a retry
        raise SourceError(Reason.CLONE_FAILED, failed.message) from None
    return replace(remote, target=pin.target, pins=pin.pins, ssh_alias=pin.ssh_alias)


# --- resolving and fetching -------------------------------------------------------------------


async def resolve_commit(
    source: GitSource,
    *,
    local_roots: Sequence[Path],
    egress: Egress = Egress(),
    on_line: LineSink | None = None,
    timeout_s: float = 60,
) -> str:
    """The full sha the source designates: the branch head (`git ls-remote`) when no commit is
    given, the commit itself when it is full, else the one commit of the branch it abbreviates
    (which needs a fetch of the branch into a scratch repository)."""
    remote = _checked_remote(source, local_roots)
    if source.commit is not None and len(source.commit) == 40:
        return source.commit.lower()
    work = _resolve(source, remote, egress, on_line)
    return await _within(timeout_s, work, "resolving the commit")


async def _resolve(
    source: GitSource, remote: _Remote, egress: Egress, on_line: LineSink | None
) -> str:
    branch_ref = f"refs/heads/{source.branch}"
    remote = await _pinned(remote, egress)
    with _scratch_home() as scratch:
        repo = scratch / "repo"
        repo.mkdir()
        git = _git(remote, repo, scratch, on_line, source)
        if source.commit is None:
            listed = await git.run("ls-remote", "--", remote.target, branch_ref, capture=True)
            for line in listed.stdout.splitlines():
                sha, _, ref = line.partition("\t")
                if ref == branch_ref:
                    return sha
            raise SourceError(Reason.REF_NOT_FOUND, f"branch {source.branch!r} does not exist")
        await git.run("init", "--quiet", "--template=")
        await git.fetch(branch_ref)
        return await _full_sha(git, source)


async def fetch(
    source: GitSource,
    *,
    into: Path,
    local_roots: Sequence[Path],
    max_bytes: int,
    timeout_s: float,
    egress: Egress = Egress(),
    on_line: LineSink | None = None,
) -> FetchedSource:
    """Check the source out in `into` (created; must be empty) at the designated commit."""
    remote = _checked_remote(source, local_roots)
    workdir = _prepare_workdir(into)
    try:
        work = _fetch_into(
            workdir, source, remote, egress=egress, max_bytes=max_bytes, on_line=on_line
        )
        return await _within(timeout_s, work, "fetching the source")
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise


def _prepare_workdir(into: Path) -> Path:
    if into.exists() and any(into.iterdir()):
        raise ValueError(f"{into} is not empty")
    into.mkdir(parents=True, exist_ok=True)
    return into.resolve()


async def _fetch_into(
    workdir: Path,
    source: GitSource,
    remote: _Remote,
    *,
    egress: Egress,
    max_bytes: int,
    on_line: LineSink | None,
) -> FetchedSource:
    remote = await _pinned(remote, egress)
    with _scratch_home() as home:
        git = _git(remote, workdir, home, on_line, source)
        guard = _size_guard(workdir, max_bytes)
        await git.run("init", "--quiet", "--template=")
        commit = await _fetch_commit(git, source, guard)
        listing = await git.run("ls-tree", "-r", "-l", "-z", "--full-tree", commit, capture=True)
        _ensure_size(_tree_bytes(listing.stdout) + _disk_usage(workdir), max_bytes)
        await git.run("checkout", "--detach", "--progress", commit, watch=guard)
        guard()
    context, dockerfile = _locate(workdir, source)
    return FetchedSource(commit=commit, workdir=workdir, context_dir=context, dockerfile=dockerfile)


async def _fetch_commit(git: _Git, source: GitSource, guard: _Watch) -> str:
    branch_ref = f"refs/heads/{source.branch}"
    if source.commit is None:
        await git.fetch(branch_ref, "--depth", "1", watch=guard)
        return await _rev_parse(git, "FETCH_HEAD^{commit}")
    if len(source.commit) == 40:
        try:
            await git.fetch(source.commit.lower(), "--depth", "1", watch=guard)
        except SourceError as error:
            if error.reason in (Reason.REPOSITORY_TOO_LARGE, Reason.GIT_AUTH_FAILED):
                raise
            # the server refuses wants by sha (or the commit is gone): try the whole branch
        else:
            return await _full_sha(git, source)
    await git.fetch(branch_ref, watch=guard)
    return await _full_sha(git, source)


async def _full_sha(git: _Git, source: GitSource) -> str:
    commit = (source.commit or "").lower()
    found = await git.run("rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}", check=False)
    if found.returncode == 0:
        return await _rev_parse(git, f"{commit}^{{commit}}")
    candidates = await git.run("rev-parse", f"--disambiguate={commit}", capture=True, check=False)
    if len(candidates.stdout.split()) > 1:
        raise SourceError(Reason.INVALID_REF, f"commit {commit} is ambiguous: give more characters")
    raise SourceError(Reason.REF_NOT_FOUND, f"commit {commit} is not in branch {source.branch!r}")


async def _rev_parse(git: _Git, name: str) -> str:
    result = await git.run("rev-parse", "--verify", name, capture=True)
    return result.stdout.strip()


# --- checking the checkout --------------------------------------------------------------------


def _size_guard(workdir: Path, max_bytes: int) -> Callable[[], None]:
    def check() -> None:
        _ensure_size(_disk_usage(workdir), max_bytes)

    return check


def _ensure_size(used: int, max_bytes: int) -> None:
    if used > max_bytes:
        raise SourceError(Reason.REPOSITORY_TOO_LARGE, f"the repository exceeds {max_bytes} bytes")


def _disk_usage(path: Path) -> int:
    total = 0
    for directory, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):  # git renames its temporary files as it goes
                total += os.lstat(os.path.join(directory, name)).st_size
    return total


def _tree_bytes(listing: str) -> int:
    """Sum of blob sizes in `git ls-tree -r -l -z` output (submodules have size "-")."""
    sizes = (entry.split("\t", 1)[0].split()[3] for entry in listing.split("\0") if entry)
    return sum(int(size) for size in sizes if size.isdigit())


def _locate(workdir: Path, source: GitSource) -> tuple[Path, Path]:
    root, dockerfile_path = _relative_paths(source)
    context = _contained(workdir, root, Reason.ROOT_PATH_NOT_FOUND)
    if not context.is_dir():
        raise SourceError(Reason.ROOT_PATH_NOT_FOUND, f"{source.root_path!r} is not a directory")
    dockerfile = _contained(workdir, dockerfile_path, Reason.DOCKERFILE_NOT_FOUND)
    if not dockerfile.is_file():
        raise SourceError(Reason.DOCKERFILE_NOT_FOUND, f"no Dockerfile at {dockerfile_path!r}")
    _check_symlinks(context, workdir / ".git")
    return context, dockerfile


def _contained(workdir: Path, relative: str, missing: SourceErrorReason) -> Path:
    path = workdir / relative
    real = Path(os.path.realpath(path))
    if real.is_relative_to(workdir) and not real.is_relative_to(workdir / ".git"):
        return real
    if os.path.lexists(path):
        raise SourceError(Reason.SYMLINK_ESCAPES_CONTEXT, f"{relative} leads out of the repository")
    raise SourceError(missing, f"{relative} does not exist")


def _check_symlinks(context: Path, git_dir: Path) -> None:
    for directory, dirs, files in os.walk(context):
        dirs[:] = [name for name in dirs if Path(directory, name) != git_dir]
        for name in (*dirs, *files):
            entry = Path(directory, name)
            if entry.is_symlink() and not Path(os.path.realpath(entry)).is_relative_to(context):
                raise SourceError(
                    Reason.SYMLINK_ESCAPES_CONTEXT,
                    f"{entry.relative_to(context)} points outside the build context",
                )
