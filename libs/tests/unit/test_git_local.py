"""Local repositories under the operator's roots: everything git reads for one must lie under a
root, not only the path named (repositories made with the real git; the builder, deployer and
scheduler tests run their fetches and polls against such paths)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from slipway_libs.git_local import LocalPathRefused, Refusal, local_repository, roots_from_setting


def git(*args: str, cwd: Path | None = None) -> str:
    env = {
        "PATH": os.environ["PATH"], "HOME": "/nonexistent", "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e",
        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e", "LC_ALL": "C",
    }  # fmt: skip
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def repository(where: Path, branch: str = "main") -> Path:
    where.mkdir(parents=True)
    git("init", "-q", "-b", branch, str(where))
    (where / "f").write_text(branch)
    git("add", "f", cwd=where)
    git("commit", "-q", "-m", branch, cwd=where)
    return where


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "root").mkdir()
    return tmp_path / "root"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A repository outside the root, on a branch nothing under the root has."""
    return repository(tmp_path / "secret", branch="secret")


def refusal(path: Path | str, root: Path) -> Refusal:
    with pytest.raises(LocalPathRefused) as refused:
        local_repository(str(path), [root])
    assert str(path) in refused.value.message or refused.value.refusal == Refusal.NOT_ABSOLUTE
    return refused.value.refusal


def heads(path: Path) -> str:
    """What git itself serves for the path (the leak the check stops)."""
    return git("-c", "protocol.file.allow=always", "ls-remote", "--heads", "--", str(path))


def test_a_work_tree_and_a_bare_repository_under_the_root_are_given_by_their_real_path(
    root: Path,
) -> None:
    tree = repository(root / "app")
    git("clone", "-q", "--bare", str(tree), str(root / "app.git"))
    (root / "link").symlink_to(tree)
    assert local_repository(str(tree), [root]) == tree.resolve()
    assert local_repository(str(root / "app.git"), [root]) == (root / "app.git").resolve()
    assert local_repository(f"{root}/link/../app", [root]) == tree.resolve()


def test_a_path_outside_the_roots_or_a_symlink_leading_out_is_refused(
    root: Path, outside: Path
) -> None:
    (root / "link").symlink_to(outside)
    assert refusal(outside, root) == Refusal.NOT_ALLOWED
    assert refusal(root / "link", root) == Refusal.NOT_ALLOWED
    assert refusal(root / ".." / "secret", root) == Refusal.NOT_ALLOWED
    with pytest.raises(LocalPathRefused):
        local_repository(str(root / "anything"), [])  # no roots: no local path


def test_a_git_file_is_refused_wherever_it_points(root: Path, outside: Path) -> None:
    decoy = root / "decoy"
    decoy.mkdir()
    (decoy / ".git").write_text(f"gitdir: {outside / '.git'}\n")
    assert "refs/heads/secret" in heads(decoy)  # git would serve the outside repository
    assert refusal(decoy, root) == Refusal.NOT_ALLOWED
    # read otherwise by git than by a parser (git strips only \r\n): never read at all
    repository(root / "real")
    (root / "tree").mkdir()
    (root / "tree" / "d ").symlink_to(outside / ".git")
    (root / "tree" / ".git").write_text("gitdir: d \n")
    assert "refs/heads/secret" in heads(root / "tree")
    assert refusal(root / "tree", root) == Refusal.NOT_ALLOWED


def test_a_linked_work_tree_is_refused_even_of_a_repository_inside(
    root: Path, outside: Path
) -> None:
    git("worktree", "add", "-q", "-b", "other", str(root / "wt"), cwd=outside)
    assert "refs/heads/secret" in heads(root / "wt")
    assert refusal(root / "wt", root) == Refusal.NOT_ALLOWED
    main = repository(root / "main")
    git("worktree", "add", "-q", "-b", "other", str(root / "inner"), cwd=main)
    assert refusal(root / "inner", root) == Refusal.NOT_ALLOWED
    assert local_repository(str(main), [root]) == main.resolve()  # its own path is fine


def test_a_commondir_is_refused(root: Path, outside: Path) -> None:
    crafted = root / "crafted"
    crafted.mkdir()
    (crafted / "HEAD").write_text("ref: refs/heads/secret\n")
    (crafted / "commondir").write_text(f"{outside / '.git'}\n")
    assert "refs/heads/secret" in heads(crafted)
    assert refusal(crafted, root) == Refusal.NOT_A_REPOSITORY


def test_a_dot_git_git_would_skip_for_what_lies_behind_it_is_refused(
    root: Path, outside: Path
) -> None:
    """Where git's test of a repository and this one's differ, git goes on to its next
    candidate: ``x/.git`` with a HEAD git refuses (garbage) or accepts (a dangling link to
    refs/), then ``x`` itself or ``x.git`` beside it, leading out."""
    garbage = root / "garbage"
    skeleton(garbage / ".git", head="garbage\n")
    (garbage / "HEAD").write_text("ref: refs/heads/secret\n")
    (garbage / "commondir").write_text(f"{outside / '.git'}\n")

    dangling = root / "dangling"
    skeleton(dangling, head="ref: refs/heads/main\n")
    (dangling / ".git").mkdir()
    (dangling / ".git" / "HEAD").symlink_to("refs/heads/secret")
    (dangling / ".git" / "commondir").write_text(f"{outside / '.git'}\n")

    beside = root / "x"
    skeleton(beside, head="garbage\n")
    (root / "x.git").symlink_to(outside / ".git")

    for crafted in (garbage, dangling, beside):
        assert "refs/heads/secret" in heads(crafted), crafted
        assert refusal(crafted, root) == Refusal.NOT_A_REPOSITORY, crafted


def skeleton(directory: Path, *, head: str) -> None:
    """What looks like a repository at a glance: objects/, refs/ and a HEAD with ``head``."""
    for name in ("objects", "refs"):
        (directory / name).mkdir(parents=True)
    (directory / "HEAD").write_text(head)


def test_alternates_are_refused_unread(root: Path, outside: Path) -> None:
    git("clone", "-q", "--shared", str(outside), str(root / "shared"))
    assert refusal(root / "shared", root) == Refusal.NOT_ALLOWED
    origin = repository(root / "origin")  # inside the root: refused as well
    git("clone", "-q", "--shared", str(origin), str(root / "inner"))
    assert refusal(root / "inner", root) == Refusal.NOT_ALLOWED
    tree = repository(root / "app")
    alternates = tree / ".git" / "objects" / "info" / "alternates"
    alternates.parent.mkdir(exist_ok=True)
    os.mkfifo(alternates)  # reading it would block: it is not read
    assert refusal(tree, root) == Refusal.NOT_ALLOWED


def test_a_symlink_in_the_git_directory_leading_out_is_refused(root: Path, outside: Path) -> None:
    tree = repository(root / "app")
    (tree / ".git" / "objects" / "pack" / "stolen.pack").symlink_to(outside / ".git" / "HEAD")
    assert refusal(tree, root) == Refusal.NOT_ALLOWED


def test_an_object_store_symlinked_outside_is_refused(root: Path, outside: Path) -> None:
    tree = repository(root / "app")
    objects = tree / ".git" / "objects"
    os.rename(objects, tree / "old-objects")
    objects.symlink_to(outside / ".git" / "objects")
    assert refusal(tree, root) == Refusal.NOT_ALLOWED


def test_a_symlink_staying_inside_is_accepted(root: Path) -> None:
    tree = repository(root / "app")
    (tree / ".git" / "description-link").symlink_to(tree / ".git" / "description")
    assert local_repository(str(tree), [root]) == tree.resolve()


def test_a_path_that_is_no_repository_is_refused_even_when_git_would_find_one_beside_it(
    root: Path, outside: Path
) -> None:
    (root / "empty").mkdir()
    assert refusal(root / "empty", root) == Refusal.NOT_A_REPOSITORY
    # git, given root/x, would try root/x.git: a symlink there leads out
    (root / "x.git").symlink_to(outside / ".git")
    assert "refs/heads/secret" in heads(root / "x")
    assert refusal(root / "x", root) == Refusal.NOT_A_REPOSITORY
    (root / "bad").mkdir()
    (root / "bad" / ".git").mkdir()  # a .git directory that is no repository
    assert refusal(root / "bad", root) == Refusal.NOT_A_REPOSITORY


def test_what_cannot_be_read_is_no_repository_and_nothing_blocks(root: Path) -> None:
    assert refusal(root / ("a" * 300), root) == Refusal.NOT_A_REPOSITORY  # ENAMETOOLONG
    fifo = root / "fifo"
    skeleton(fifo, head="")
    (fifo / "HEAD").unlink()
    os.mkfifo(fifo / "HEAD")
    assert refusal(fifo, root) == Refusal.NOT_A_REPOSITORY


@pytest.mark.parametrize("path", ["relative/path", "", "/tmp/a\u202eb", "/tmp/a\nb", "/a\0b"])
def test_a_relative_or_unprintable_path_is_refused(path: str, root: Path) -> None:
    assert refusal(path, root) == Refusal.NOT_ABSOLUTE


def test_roots_from_the_setting_keep_absolute_paths_only() -> None:
    value = os.pathsep.join(["/srv/git", "relative", "", "/home/me"])
    assert roots_from_setting(value) == (Path("/srv/git"), Path("/home/me"))
    assert roots_from_setting("") == ()


def test_a_git_directory_too_large_to_check_is_refused(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = repository(root / "app")
    monkeypatch.setattr("slipway_libs.git_local._MAX_ENTRIES", 10)
    with pytest.raises(LocalPathRefused) as refused:
        local_repository(str(tree), [root])
    assert refused.value.refusal == Refusal.NOT_ALLOWED
    assert "git gc" in refused.value.message
