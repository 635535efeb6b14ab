"""Which local repositories a service may let git read: those under the operator's roots.

The builder (sources), the deployer (git charts) and the scheduler (polls) accept a local path
as a repository when the operator named roots for it (``SLIPWAY_GIT_LOCAL_ROOTS``). A path under
a root is not enough: git reads a repository through pointers the repository itself holds, and
whoever may write under a root could point them anywhere this service's user may read. Parsing
those pointers as git does is a losing game (a review found five ways this module's first
version read them otherwise: whitespace, comments, a dangling HEAD symlink...), so what git may
follow out of the repository is refused instead, and what is kept is checked more strictly than
git checks it, so that git can only pick the directory checked here:
- the repository is ``path/.git`` when that exists (a directory: a ``.git`` *file*, a linked
  work tree's or a submodule's, is refused), else the path itself (bare); either must pass
  git's own test of a repository (``is_git_directory``: HEAD a symbolic ref to ``refs/`` or a
  commit id, ``objects`` and ``refs`` directories) in a stricter form (HEAD a regular file), so
  git, trying the same candidates in the same order (``enter_repo``), stops at it too and never
  goes on to ``path.git`` beside it;
- a ``commondir`` file (the shared repository of a linked work tree) and alternates
  (``objects/info/alternates``, another object store read as this one's) are refused, never
  read;
- every symlink inside the repository must resolve under a root.
git is then given the real path. Nothing here blocks: no pointer file is read, HEAD only when it
is a regular file, at most 256 bytes. What this cannot close: a file swapped between the check
and git's read by someone who may write under a root (the roots are the operator's trust
boundary: name directories only trusted users write to).
"""

from __future__ import annotations

import enum
import os
import re
import stat
from collections.abc import Sequence
from pathlib import Path

# a repository's git directory is walked for symlinks; one with more entries is refused
_MAX_ENTRIES = 50_000  # ~70 ms to walk: the check runs on the event loop
_MAX_PATH = 4096
# git's validate_headref, narrowed: "ref:" then refs/..., or a commit id (SHA-1 or SHA-256)
_HEAD = re.compile(rb"ref:[ \t]*refs/|[0-9a-fA-F]{40}")


class Refusal(enum.StrEnum):
    NOT_ABSOLUTE = "NOT_ABSOLUTE"  # not an absolute path of printable text
    NOT_ALLOWED = "NOT_ALLOWED"  # it, or something git would read for it, is outside the roots
    NOT_A_REPOSITORY = "NOT_A_REPOSITORY"


class LocalPathRefused(Exception):
    """``refusal`` says which; ``message`` is one sentence naming the path as given."""

    def __init__(self, refusal: Refusal, message: str) -> None:
        super().__init__(message)
        self.refusal = refusal
        self.message = message


def roots_from_setting(value: str) -> tuple[Path, ...]:
    """``SLIPWAY_GIT_LOCAL_ROOTS``: os.pathsep-separated absolute paths (a relative one is
    ignored); empty allows no local path."""
    return tuple(Path(part) for part in value.split(os.pathsep) if os.path.isabs(part))


def local_repository(path: str, roots: Sequence[Path]) -> Path:
    """The repository's real path, or ``LocalPathRefused``."""
    if not path.isprintable() or not os.path.isabs(path) or len(path) > _MAX_PATH:
        raise LocalPathRefused(Refusal.NOT_ABSOLUTE, "a local repository must be an absolute path")
    allowed = _Roots(roots)
    try:
        real = Path(os.path.realpath(path))
        if not allowed.hold(real):
            message = f"{path} is not under an allowed local root"
            raise LocalPathRefused(Refusal.NOT_ALLOWED, message)
        git_dir = Path(os.path.realpath(_git_dir(real, path)))
        if not allowed.hold(git_dir):
            raise _leads_outside(path)
        _no_pointer_out(git_dir, path)
        _no_symlink_leads_out(git_dir, allowed, path)
    except (OSError, ValueError):  # a name too long, a directory that cannot be read...
        raise _not_a_repository(path) from None
    return real


class _Roots:
    def __init__(self, roots: Sequence[Path]) -> None:
        self._real = [Path(os.path.realpath(root)) for root in roots if root.is_absolute()]

    def hold(self, real: Path) -> bool:
        return any(real.is_relative_to(root) for root in self._real)


def _git_dir(real: Path, path: str) -> Path:
    """``path/.git`` when it exists, else the path itself: what git's ``enter_repo`` picks,
    provided it passes the stricter test here."""
    dot_git = real / ".git"
    if os.path.lexists(dot_git):
        if not dot_git.is_dir():  # a gitdir: file, or a link to one or to nothing
            message = (
                f"{path} is a linked work tree or a submodule (its .git is a file): give the"
                " path of the repository itself"
            )
            raise LocalPathRefused(Refusal.NOT_ALLOWED, message)
        candidate = dot_git
    else:
        candidate = real
    if not _is_git_directory(candidate):
        raise _not_a_repository(path)
    return candidate


def _is_git_directory(directory: Path) -> bool:
    """git's ``is_git_directory``, narrowed: what passes here passes there."""
    return (
        _head_is_valid(directory / "HEAD")
        and not os.path.lexists(directory / "commondir")
        and all(
            (directory / name).is_dir() and os.access(directory / name, os.X_OK)
            for name in ("objects", "refs")
        )
    )


def _head_is_valid(head: Path) -> bool:
    """A regular file (no FIFO to block on, no symlink) naming a ref under refs/ or a commit."""
    try:
        fd = os.open(head, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        return _HEAD.match(os.read(fd, 256)) is not None
    finally:
        os.close(fd)


def _no_pointer_out(git_dir: Path, path: str) -> None:
    """Alternates would make git read another object store as this one's: refused, unread."""
    if os.path.lexists(git_dir / "objects" / "info" / "alternates"):
        message = (
            f"{path} borrows objects from another repository (objects/info/alternates):"
            " repack it on its own (git repack -a -d, then remove that file)"
        )
        raise LocalPathRefused(Refusal.NOT_ALLOWED, message)


def _leads_outside(path: str) -> LocalPathRefused:
    message = f"{path} is a repository whose git data lies outside the allowed local roots"
    return LocalPathRefused(Refusal.NOT_ALLOWED, message)


def _not_a_repository(path: str) -> LocalPathRefused:
    return LocalPathRefused(Refusal.NOT_A_REPOSITORY, f"{path} is not a git repository")


def _no_symlink_leads_out(git_dir: Path, allowed: _Roots, path: str) -> None:
    """Walk the (real) git directory, symlinks not followed: each must resolve under a root."""
    pending, walked = [str(git_dir)], 0
    while pending:
        try:
            entries = list(os.scandir(pending.pop()))
        except FileNotFoundError:
            continue  # gone since (git gc): nothing there for git to read either
        except OSError:
            raise _leads_outside(path) from None  # not listed, so not checked
        walked += len(entries)
        if walked > _MAX_ENTRIES:
            message = (
                f"{path} has over {_MAX_ENTRIES:,} files in its git directory to check:"
                " pack them (git gc)"
            )
            raise LocalPathRefused(Refusal.NOT_ALLOWED, message)
        for entry in entries:
            if entry.is_symlink():
                if not allowed.hold(Path(os.path.realpath(entry.path))):
                    raise _leads_outside(path)
            elif entry.is_dir(follow_symlinks=False):
                pending.append(entry.path)
