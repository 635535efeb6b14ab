"""Which local repositories a service may let git read: those under the operator's roots.

The builder (sources), the deployer (git charts) and the scheduler (polls) accept a local path
as a repository when the operator named roots for it (``SLIPWAY_GIT_LOCAL_ROOTS``). A path under
a root is not enough: git reads a repository through pointers the repository itself holds, and
whoever may write under a root could point them anywhere this service's user may read. So
``local_repository`` accepts a path only when everything git would read for it lies under a
root, after resolving symlinks:
- the repository git picks for the path, in git's order (``path/.git``, a directory or a
  ``gitdir:`` file, else the path itself as a bare repository); never ``path.git`` nor a parent,
  which git would try when the path is not a repository: such a path is refused;
- its ``commondir`` (a linked work tree's shared repository), its object store and every
  alternate object store (``objects/info/alternates``, followed as deep as git follows them);
- every symlink inside those directories.
git is then given the real path. What this cannot close: a file swapped between the check and
git's read by someone who may write under a root (the roots are the operator's trust boundary:
name directories only trusted users write to).
"""

from __future__ import annotations

import enum
import os
from collections.abc import Sequence
from pathlib import Path

# git follows alternates this deep (``alt_odb_usable``'s depth limit is 5): we check one more
_ALTERNATES_DEPTH = 6
# a repository's git directories are walked for symlinks; one with more entries is refused
_MAX_ENTRIES = 200_000
_MAX_POINTER_BYTES = 4096


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
    if not path.isprintable() or not os.path.isabs(path):
        raise LocalPathRefused(Refusal.NOT_ABSOLUTE, "a local repository must be an absolute path")
    allowed = _Roots(roots)
    real = Path(os.path.realpath(path))
    if not allowed.hold(real):
        raise LocalPathRefused(Refusal.NOT_ALLOWED, f"{path} is not under an allowed local root")
    git_dir = _git_dir(real, path)
    common = _common_dir(git_dir, path)
    stores = _object_stores(common / "objects", path)
    read = {Path(os.path.realpath(directory)) for directory in (git_dir, common, *stores)}
    if not all(allowed.hold(directory) for directory in read):
        raise _leads_outside(path)
    _no_symlink_leads_out(read, allowed, path)
    return real


class _Roots:
    def __init__(self, roots: Sequence[Path]) -> None:
        self._real = [Path(os.path.realpath(root)) for root in roots if root.is_absolute()]

    def hold(self, real: Path) -> bool:
        return any(real.is_relative_to(root) for root in self._real)


def _leads_outside(path: str) -> LocalPathRefused:
    message = f"{path} is a repository whose git data lies outside the allowed local roots"
    return LocalPathRefused(Refusal.NOT_ALLOWED, message)


def _not_a_repository(path: str) -> LocalPathRefused:
    return LocalPathRefused(Refusal.NOT_A_REPOSITORY, f"{path} is not a git repository")


def _git_dir(real: Path, path: str) -> Path:
    """What git's ``enter_repo`` picks for the path, limited to its first two choices."""
    dot_git = real / ".git"
    if dot_git.is_file():
        return _pointed(dot_git, "gitdir: ", path)
    if dot_git.is_dir() and _is_git_directory(dot_git, path):
        return dot_git
    if _is_git_directory(real, path):
        return real
    raise _not_a_repository(path)


def _is_git_directory(directory: Path, path: str) -> bool:
    common = _common_dir(directory, path)
    return (
        (directory / "HEAD").is_file()
        and (common / "objects").is_dir()
        and (common / "refs").is_dir()
    )


def _common_dir(git_dir: Path, path: str) -> Path:
    pointer = git_dir / "commondir"
    return _pointed(pointer, "", path) if pointer.is_file() else git_dir


def _pointed(pointer: Path, prefix: str, path: str) -> Path:
    """The directory a git pointer file names (relative to the file's own, as git reads it)."""
    try:
        with pointer.open("rb") as file:
            text = file.read(_MAX_POINTER_BYTES + 1).decode()
    except (OSError, UnicodeDecodeError):
        raise _not_a_repository(path) from None
    target = text.rstrip()
    if len(text) > _MAX_POINTER_BYTES or not target.startswith(prefix):
        raise _not_a_repository(path)
    target = target.removeprefix(prefix)
    if not target or "\n" in target or "\0" in target:
        raise _not_a_repository(path)
    named = pointer.parent / target
    if not named.is_dir():
        raise _not_a_repository(path)
    return named


def _object_stores(objects: Path, path: str) -> list[Path]:
    """The object store and every alternate git would read, to the depth git reads them."""
    found, frontier = [objects], [objects]
    for _ in range(_ALTERNATES_DEPTH):
        frontier = [alt for store in frontier for alt in _alternates(store, path)]
        found += frontier
    if frontier and any(_alternates(store, path) for store in frontier):
        raise _leads_outside(path)  # deeper than git goes: nothing honest needs it
    return found


def _alternates(store: Path, path: str) -> list[Path]:
    listed = store / "info" / "alternates"
    try:
        text = listed.read_bytes().decode()
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError):
        raise _leads_outside(path) from None
    lines = [line.strip() for line in text.splitlines()]
    entries = [line for line in lines if line and not line.startswith("#")]
    if any(entry.startswith('"') for entry in entries):
        raise _leads_outside(path)  # a C-quoted path: not read here, so not allowed
    return [store / entry for entry in entries]  # a relative one is relative to the store


def _no_symlink_leads_out(directories: set[Path], allowed: _Roots, path: str) -> None:
    """Walk the (real) directories, symlinks not followed: each must resolve under a root."""
    pending, walked = _outermost(directories), 0
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


def _outermost(directories: set[Path]) -> list[str]:
    """The real directories none of the others contains (each is walked once)."""
    ordered = sorted(directories, key=lambda d: len(d.parts))
    kept: list[Path] = []
    for directory in ordered:
        if not any(directory.is_relative_to(outer) for outer in kept):
            kept.append(directory)
    return [str(directory) for directory in kept]
