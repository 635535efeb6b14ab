"""Fetching a build's source with real git: local repositories made in tmp_path, a TLS server on
127.0.0.1 standing in for an https forge. Every refusal is checked twice: the right reason, and
nothing ran (no process spawned, no marker file a hostile command would create, no work dir)."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import os
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from slipway_builder.adapters.sources import (
    Egress,
    FetchedSource,
    GitSource,
    SourceError,
    fetch,
    resolve_commit,
    run_process,
    validate,
)
from slipway_libs.egress import EgressPolicy, IPAddress
from slipway_libs.process import redact
from slipway_libs.testing.certificates import self_signed
from slipway_libs.testing.processes import is_gone

pytestmark = pytest.mark.integration

TOKEN = "ghp_s3cr3t-T0KEN-value"
TOKEN_B64 = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
GIT_ENV = {
    "PATH": os.environ["PATH"],
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "LC_ALL": "C",
}


# --- repositories -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Link:
    target: str


Snapshot = dict[str, str | bytes | Link | None]  # None deletes the path


def git(cwd: Path, *args: str) -> str:
    argv = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args]
    result = subprocess.run(argv, cwd=cwd, env=GIT_ENV, check=True, capture_output=True)
    return result.stdout.decode().strip()


def make_repo(path: Path, *snapshots: Snapshot) -> list[str]:
    """A repository on branch main with one commit per snapshot; the commits' shas."""
    path.mkdir(parents=True)
    git(path, "init", "--quiet", "--initial-branch=main")
    commits = []
    for snapshot in snapshots:
        for name, content in snapshot.items():
            target = path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_symlink() or target.is_file():
                target.unlink()
            if isinstance(content, Link):
                target.symlink_to(content.target)
            elif isinstance(content, bytes):
                target.write_bytes(content)
            elif isinstance(content, str):
                target.write_text(content)
        git(path, "add", "--all")
        git(path, "commit", "--quiet", "--message", f"commit {len(commits)}")
        commits.append(git(path, "rev-parse", "HEAD"))
    return commits


@dataclass
class Repo:
    path: Path
    commits: list[str]


@pytest.fixture
def roots(tmp_path: Path) -> Path:
    root = tmp_path / "roots"
    root.mkdir()
    return root


@pytest.fixture
def repo(roots: Path) -> Repo:
    path = roots / "app"
    commits = make_repo(
        path,
        {
            "Dockerfile": "FROM scratch\n",
            "app/Dockerfile": "FROM scratch\n",
            "app/main.txt": "v1\n",
        },
        {"app/main.txt": "v2\n", "README.md": "hello\n"},
    )
    return Repo(path, commits)


@dataclass
class Lines:
    seen: list[tuple[str, str]] = field(default_factory=list)

    async def __call__(self, stream: str, text: str) -> None:
        self.seen.append((stream, text))

    def text(self) -> str:
        return "\n".join(text for _, text in self.seen)


Call = tuple[list[str], dict[str, str]]


@pytest.fixture
def spawned(monkeypatch: pytest.MonkeyPatch) -> list[Call]:
    """Every process started through asyncio: argv and environment."""
    calls: list[Call] = []
    real = asyncio.create_subprocess_exec

    async def spy(*argv: Any, **kwargs: Any) -> Any:
        calls.append(([str(a) for a in argv], dict(kwargs.get("env") or {})))
        return await real(*argv, **kwargs)

    monkeypatch.setattr(asyncio, "create_subprocess_exec", spy)
    return calls


async def fetch_into(
    tmp_path: Path, source: GitSource, roots: Path, **options: Any
) -> FetchedSource:
    return await fetch(
        source,
        into=tmp_path / "work",
        local_roots=[roots],
        max_bytes=options.pop("max_bytes", 10_000_000),
        timeout_s=options.pop("timeout_s", 30),
        **options,
    )


async def refused(
    source: GitSource, tmp_path: Path, roots: Path, spawned: list[Call], **options: Any
) -> str:
    """Fetch, expecting a refusal; the reason. The work dir is gone afterwards."""
    with pytest.raises(SourceError) as caught:
        await fetch_into(tmp_path, source, roots, **options)
    assert not (tmp_path / "work").exists()
    return caught.value.reason


# --- fetching ---------------------------------------------------------------------------------


async def test_fetches_the_branch_head_shallow(
    tmp_path: Path, repo: Repo, roots: Path, spawned: list[Call]
) -> None:
    lines = Lines()
    fetched = await fetch_into(tmp_path, GitSource(url=str(repo.path)), roots, on_line=lines)

    assert fetched.commit == repo.commits[1]
    assert fetched.workdir == (tmp_path / "work").resolve()
    assert fetched.context_dir == fetched.workdir
    assert fetched.dockerfile == fetched.workdir / "Dockerfile"
    assert (fetched.workdir / "app" / "main.txt").read_text() == "v2\n"
    assert git(fetched.workdir, "rev-parse", "HEAD") == repo.commits[1]
    assert (fetched.workdir / ".git" / "shallow").exists()
    assert any(s == "stderr" and "FETCH_HEAD" in text for s, text in lines.seen)


async def test_fetches_an_exact_older_commit(tmp_path: Path, repo: Repo, roots: Path) -> None:
    source = GitSource(url=str(repo.path), commit=repo.commits[0].upper())
    fetched = await fetch_into(tmp_path, source, roots)

    assert fetched.commit == repo.commits[0]
    assert git(fetched.workdir, "rev-parse", "HEAD") == repo.commits[0]
    assert (fetched.workdir / "app" / "main.txt").read_text() == "v1\n"
    assert not (fetched.workdir / "README.md").exists()


async def test_a_short_sha_is_expanded(tmp_path: Path, repo: Repo, roots: Path) -> None:
    source = GitSource(url=f"file://{repo.path}", commit=repo.commits[0][:8])
    fetched = await fetch_into(tmp_path, source, roots)
    assert fetched.commit == repo.commits[0]
    assert await resolve_commit(source, local_roots=[roots]) == repo.commits[0]


async def test_resolve_commit_reads_the_branch_head(repo: Repo, roots: Path) -> None:
    source = GitSource(url=str(repo.path))
    assert await resolve_commit(source, local_roots=[roots]) == repo.commits[1]


async def test_resolve_commit_returns_a_full_sha_without_running_git(
    repo: Repo, roots: Path, spawned: list[Call]
) -> None:
    source = GitSource(url=str(repo.path), commit=repo.commits[0].upper())
    assert await resolve_commit(source, local_roots=[roots]) == repo.commits[0]
    assert spawned == []


async def test_unknown_branch_or_commit_is_not_found(
    tmp_path: Path, repo: Repo, roots: Path, spawned: list[Call]
) -> None:
    missing_branch = GitSource(url=str(repo.path), branch="nope")
    with pytest.raises(SourceError) as caught:
        await resolve_commit(missing_branch, local_roots=[roots])
    assert caught.value.reason == "REF_NOT_FOUND"
    assert await refused(missing_branch, tmp_path, roots, spawned) == "REF_NOT_FOUND"
    missing_commit = GitSource(url=str(repo.path), commit="deadbeef" * 5)
    assert await refused(missing_commit, tmp_path, roots, spawned) == "REF_NOT_FOUND"
    missing_short = GitSource(url=str(repo.path), commit="deadbeef")
    assert await refused(missing_short, tmp_path, roots, spawned) == "REF_NOT_FOUND"


async def test_root_path_and_dockerfile_relative_to_it(
    tmp_path: Path, repo: Repo, roots: Path
) -> None:
    source = GitSource(url=str(repo.path), root_path="/app/")
    fetched = await fetch_into(tmp_path, source, roots)
    assert fetched.context_dir == fetched.workdir / "app"
    assert fetched.dockerfile == fetched.workdir / "app" / "Dockerfile"


async def test_a_dockerfile_outside_the_context_but_inside_the_checkout(
    tmp_path: Path, repo: Repo, roots: Path
) -> None:
    source = GitSource(url=str(repo.path), root_path="app", dockerfile_path="../Dockerfile")
    fetched = await fetch_into(tmp_path, source, roots)
    assert fetched.dockerfile == fetched.workdir / "Dockerfile"


@pytest.mark.parametrize(
    ("root_path", "dockerfile_path", "reason"),
    [
        ("missing", "Dockerfile", "ROOT_PATH_NOT_FOUND"),
        ("README.md", "Dockerfile", "ROOT_PATH_NOT_FOUND"),
        ("/", "Nope", "DOCKERFILE_NOT_FOUND"),
        ("app", "main.txt/..", "DOCKERFILE_NOT_FOUND"),
        ("/", "app", "DOCKERFILE_NOT_FOUND"),
    ],
)
async def test_missing_root_path_or_dockerfile(
    tmp_path: Path,
    repo: Repo,
    roots: Path,
    spawned: list[Call],
    root_path: str,
    dockerfile_path: str,
    reason: str,
) -> None:
    source = GitSource(url=str(repo.path), root_path=root_path, dockerfile_path=dockerfile_path)
    assert await refused(source, tmp_path, roots, spawned) == reason


@pytest.mark.parametrize(
    ("root_path", "dockerfile_path", "reason"),
    [
        ("../elsewhere", "Dockerfile", "ROOT_PATH_NOT_FOUND"),
        ("app/../..", "Dockerfile", "ROOT_PATH_NOT_FOUND"),
        (".git", "config", "ROOT_PATH_NOT_FOUND"),
        ("/", "../../etc/passwd", "DOCKERFILE_NOT_FOUND"),
        ("/", ".git/config", "DOCKERFILE_NOT_FOUND"),
        ("/", "", "DOCKERFILE_NOT_FOUND"),
        ("a\x00b", "Dockerfile", "ROOT_PATH_NOT_FOUND"),
    ],
)
async def test_paths_leaving_the_checkout_are_refused_before_anything_runs(
    tmp_path: Path,
    repo: Repo,
    roots: Path,
    spawned: list[Call],
    root_path: str,
    dockerfile_path: str,
    reason: str,
) -> None:
    source = GitSource(url=str(repo.path), root_path=root_path, dockerfile_path=dockerfile_path)
    assert await refused(source, tmp_path, roots, spawned) == reason
    assert spawned == []


# --- symlinks ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("snapshot", "root_path", "dockerfile_path"),
    [
        ({"ctx/Dockerfile": "x", "ctx/leak": Link("/etc/passwd")}, "ctx", "Dockerfile"),
        ({"ctx/Dockerfile": "x", "ctx/up": Link("..")}, "ctx", "Dockerfile"),
        ({"Dockerfile": "x", "up": Link("..")}, "/", "Dockerfile"),
        ({"ctx/Dockerfile": "x", "ctx/a/b/deep": Link("../../../other")}, "ctx", "Dockerfile"),
        ({"ctx/Dockerfile": "x", "ctx/ghost": Link("/nonexistent/file")}, "ctx", "Dockerfile"),
        ({"ctx/Dockerfile": "x", "ctx/git": Link("../.git/config")}, "ctx", "Dockerfile"),
        ({"Dockerfile": "x", "ctx": Link("/etc")}, "ctx", "../Dockerfile"),
        ({"Dockerfile": Link("/etc/passwd")}, "/", "Dockerfile"),
        ({"Dockerfile": "x", "ctx/Dockerfile": Link("/etc/passwd")}, "ctx", "Dockerfile"),
    ],
    ids=["file-to-etc", "dir-to-parent", "root-to-parent", "deep", "dangling", "into-git",
         "root-path", "dockerfile", "dockerfile-in-context"],
)  # fmt: skip
async def test_symlinks_escaping_the_context_are_refused(
    tmp_path: Path,
    roots: Path,
    spawned: list[Call],
    snapshot: Snapshot,
    root_path: str,
    dockerfile_path: str,
) -> None:
    make_repo(roots / "linked", {"other": "outside the context\n", **snapshot})
    source = GitSource(
        url=str(roots / "linked"), root_path=root_path, dockerfile_path=dockerfile_path
    )
    assert await refused(source, tmp_path, roots, spawned) == "SYMLINK_ESCAPES_CONTEXT"


async def test_symlinks_inside_the_context_are_kept(tmp_path: Path, roots: Path) -> None:
    snapshot: Snapshot = {
        "ctx/real/Dockerfile": "FROM scratch\n",
        "ctx/Dockerfile": Link("real/Dockerfile"),
        "ctx/alias": Link("real"),
        "ctx/real/self": Link("."),
    }
    make_repo(roots / "linked", snapshot)
    source = GitSource(url=str(roots / "linked"), root_path="ctx")
    fetched = await fetch_into(tmp_path, source, roots)
    assert fetched.dockerfile == fetched.workdir / "ctx" / "real" / "Dockerfile"
    assert (fetched.context_dir / "alias").is_symlink()


# --- size -------------------------------------------------------------------------------------


async def test_an_incompressible_repository_over_the_limit(
    tmp_path: Path, roots: Path, spawned: list[Call]
) -> None:
    make_repo(roots / "big", {"Dockerfile": "FROM scratch\n", "blob.bin": os.urandom(300_000)})
    source = GitSource(url=str(roots / "big"))
    assert await refused(source, tmp_path, roots, spawned, max_bytes=200_000) == (
        "REPOSITORY_TOO_LARGE"
    )


async def test_a_compressed_bomb_is_refused_before_checkout(
    tmp_path: Path, roots: Path, spawned: list[Call]
) -> None:
    make_repo(roots / "bomb", {"Dockerfile": "FROM scratch\n", "zeros": bytes(5_000_000)})
    source = GitSource(url=str(roots / "bomb"))
    assert await refused(source, tmp_path, roots, spawned, max_bytes=1_000_000) == (
        "REPOSITORY_TOO_LARGE"
    )
    assert spawned and not any("checkout" in argv for argv, _ in spawned)


# --- hostile sources --------------------------------------------------------------------------


@pytest.fixture
def outside(tmp_path: Path, roots: Path) -> Path:
    """A real, fetchable repository outside the allowed roots, and a symlink to it inside them."""
    path = tmp_path / "outside" / "repo"
    make_repo(path, {"Dockerfile": "FROM scratch\n"})
    (roots / "escape").symlink_to(path)
    return path


HOSTILE_URLS = [
    ("ext::sh -c touch% {marker}", "TRANSPORT_NOT_ALLOWED"),
    ("ext::sh -c 'touch {marker}'", "TRANSPORT_NOT_ALLOWED"),
    ("EXT::sh", "TRANSPORT_NOT_ALLOWED"),
    ("fd::17", "TRANSPORT_NOT_ALLOWED"),
    ("fd::17/repo", "TRANSPORT_NOT_ALLOWED"),
    ("example.com::repo", "TRANSPORT_NOT_ALLOWED"),
    ("git://127.0.0.1/repo.git", "TRANSPORT_NOT_ALLOWED"),
    ("http://127.0.0.1/repo.git", "TRANSPORT_NOT_ALLOWED"),
    ("HTTPS://example.com/repo.git", "TRANSPORT_NOT_ALLOWED"),
    ("ftp://example.com/repo.git", "TRANSPORT_NOT_ALLOWED"),
    ("--upload-pack=touch {marker}", "INVALID_URL"),
    ("--upload-pack=touch%20{marker}", "INVALID_URL"),
    ("-uhttps://example.com/repo.git", "INVALID_URL"),
    ("https://example.com/repo.git --upload-pack=touch {marker}", "INVALID_URL"),
    ("https://example.com/repo.git\n--upload-pack=x", "INVALID_URL"),
    ("https://example.com/--upload-pack=touch%20x", "INVALID_URL"),
    ("https://example.com/repo%0a.git", "INVALID_URL"),
    ("{roots}/--upload-pack=touch", "INVALID_URL"),
    ("ssh://-oProxyCommand=touch%20{marker}/repo.git", "INVALID_URL"),
    ("ssh://git@-oProxyCommand=x/repo.git", "INVALID_URL"),
    ("ssh://example.com", "INVALID_URL"),
    ("-oProxyCommand=touch:{marker}", "INVALID_URL"),
    ("git@-oProxyCommand=x:repo.git", "INVALID_URL"),
    ("example.com:-oProxyCommand=x", "INVALID_URL"),
    ("https://user:password@example.com/repo.git", "INVALID_URL"),
    ("https://example.com:99999/repo.git", "INVALID_URL"),
    ("https:///repo.git", "INVALID_URL"),
    ("https://exa%2dmple.com/repo.git", "INVALID_URL"),
    ("https://bücher.example/repo.git", "INVALID_URL"),
    ("https://example.com\\@evil/repo.git", "INVALID_URL"),
    ("relative/repo", "INVALID_URL"),
    ("", "INVALID_URL"),
    ("file://example.com{roots}/app", "INVALID_URL"),
    ("file:///", "LOCAL_PATH_NOT_ALLOWED"),
    ("file://{outside}", "LOCAL_PATH_NOT_ALLOWED"),
    ("file://{roots}/%2e%2e/outside/repo", "LOCAL_PATH_NOT_ALLOWED"),
    ("/etc", "LOCAL_PATH_NOT_ALLOWED"),
    ("{outside}", "LOCAL_PATH_NOT_ALLOWED"),
    ("{roots}/escape", "LOCAL_PATH_NOT_ALLOWED"),
    ("{roots}/../outside/repo", "LOCAL_PATH_NOT_ALLOWED"),
]


@pytest.mark.parametrize(("template", "reason"), HOSTILE_URLS)
async def test_hostile_urls_are_refused_before_anything_runs(
    tmp_path: Path,
    roots: Path,
    outside: Path,
    spawned: list[Call],
    template: str,
    reason: str,
) -> None:
    marker = tmp_path / "pwned"
    url = template.format(marker=marker, roots=roots, outside=outside)
    source = GitSource(url=url)

    with pytest.raises(SourceError) as caught:
        validate(source, local_roots=[roots])
    assert caught.value.reason == reason
    with pytest.raises(SourceError) as caught:
        await resolve_commit(source, local_roots=[roots])
    assert caught.value.reason == reason
    assert await refused(source, tmp_path, roots, spawned) == reason
    assert spawned == []
    assert not marker.exists()


@pytest.mark.parametrize(
    "template",
    [
        "https://github.com/org/repo.git",
        "https://gitlab.example.com:8443/group/sub/repo",
        "https://user@example.com/repo.git",
        "https://[::1]:8443/repo.git",
        "ssh://git@github.com/org/repo.git",
        "ssh://git@example.com:2222/~user/repo.git",
        "git@github.com:org/repo.git",
        "example.com:repo.git",
        "file://{roots}/app",
        "file://localhost{roots}/app",
        "{roots}/app",
        "{roots}/app/",
        "{roots}/link/../app",
    ],
)
def test_ordinary_urls_are_accepted(repo: Repo, roots: Path, template: str) -> None:
    (roots / "link").symlink_to(roots / "app")
    validate(GitSource(url=template.format(roots=roots)), local_roots=[roots])


def test_a_local_path_is_fetched_only_when_everything_git_reads_for_it_is_under_the_roots(
    tmp_path: Path, roots: Path
) -> None:
    """The shared check (``slipway_libs.git_local``, tested there case by case) guards fetches:
    a work tree under the root whose ``.git`` file points outside is refused."""
    make_repo(tmp_path / "secret", {"secret.txt": "outside"})
    (roots / "decoy").mkdir()
    (roots / "decoy" / ".git").write_text(f"gitdir: {tmp_path / 'secret' / '.git'}\n")
    with pytest.raises(SourceError) as caught:
        validate(GitSource(url=str(roots / "decoy")), local_roots=[roots])
    assert caught.value.reason == "LOCAL_PATH_NOT_ALLOWED"
    assert "linked work tree or a submodule" in caught.value.message
    (roots / "empty").mkdir()
    with pytest.raises(SourceError) as caught:
        validate(GitSource(url=str(roots / "empty")), local_roots=[roots])
    assert (caught.value.reason, caught.value.retryable) == ("CLONE_FAILED", True)


def test_the_ext_marker_would_be_created_by_an_unguarded_git(tmp_path: Path) -> None:
    """Keeps the hostile-URL tests honest: the same URL does run a command in plain git."""
    marker = tmp_path / "pwned"
    subprocess.run(
        ["git", "-c", "protocol.ext.allow=always", "ls-remote", f"ext::sh -c touch% {marker}"],
        env=GIT_ENV,
        capture_output=True,
        check=False,
    )
    assert marker.exists()


async def test_no_local_path_is_allowed_without_roots(
    tmp_path: Path, repo: Repo, spawned: list[Call]
) -> None:
    source = GitSource(url=str(repo.path))
    with pytest.raises(SourceError) as caught:
        await fetch(source, into=tmp_path / "work", local_roots=[], max_bytes=10**7, timeout_s=30)
    assert caught.value.reason == "LOCAL_PATH_NOT_ALLOWED"
    assert spawned == []


HOSTILE_BRANCHES = [
    "--upload-pack=x", "main;touch {marker}", "-b", "a..b", "main@{0}", "HEAD", "", "a b", "a\tb",
    "a\nb", "a\x00b", "feat/.hidden", "x.lock", "a//b", "/a", "a/", "a.", "a~1", "a^", "a:b", "a?",
    "a*", "a[b", "a\\b", "@", "x" * 256,
]  # fmt: skip
HOSTILE_COMMITS = ["--upload-pack=x", "HEAD", "main", "abc123", "g" * 40, "a" * 41, "-" + "a" * 39]


@pytest.mark.parametrize(
    ("branch", "commit"),
    [(b, None) for b in HOSTILE_BRANCHES] + [("main", c) for c in HOSTILE_COMMITS],
)
async def test_hostile_refs_are_refused_before_anything_runs(
    tmp_path: Path, repo: Repo, roots: Path, spawned: list[Call], branch: str, commit: str | None
) -> None:
    marker = tmp_path / "pwned"
    source = GitSource(
        url=str(repo.path), branch=branch.replace("{marker}", str(marker)), commit=commit
    )
    with pytest.raises(SourceError) as caught:
        await resolve_commit(source, local_roots=[roots])
    assert caught.value.reason == "INVALID_REF"
    assert await refused(source, tmp_path, roots, spawned) == "INVALID_REF"
    assert spawned == []
    assert not marker.exists()


@pytest.mark.parametrize(
    "name",
    ["main", "feature/x-1", "release-1.2", "+plus", "ünïcode", "a@b", "refs/heads/x", "a.b/c",
     "x.lockx", "-b", "a..b", "x.lock", "x.lock/y", "a/.b", ".a", "a//b", "a/", "a.", "a^b",
     "a~1", "a:b", "a?b", "a*b", "a[b", "a\\b", "a b", "main@{0}", "@{x", "HEAD"],
)  # fmt: skip
def test_branch_rules_agree_with_git_check_ref_format(tmp_path: Path, name: str) -> None:
    by_git = subprocess.run(
        ["git", "check-ref-format", "--branch", name], env=GIT_ENV, capture_output=True
    )
    try:
        validate(GitSource(url="https://example.com/r.git", branch=name), local_roots=[])
        accepted = True
    except SourceError:
        accepted = False
    assert accepted == (by_git.returncode == 0)


# --- tokens -----------------------------------------------------------------------------------


def test_redact_hides_every_secret() -> None:
    line = f"Authorization: Basic {TOKEN_B64} and {TOKEN} twice {TOKEN}"
    redacted = redact(line, secrets=(TOKEN, TOKEN_B64))
    assert TOKEN not in redacted and TOKEN_B64 not in redacted
    assert redacted == "Authorization: Basic *** and *** twice ***"
    assert redact("nothing to hide", secrets=("", "")) == "nothing to hide"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def allowing(*targets: str, resolver: Any = None) -> Egress:
    """The egress settings of a builder whose allow-list names these host:port targets."""
    policy = EgressPolicy.from_setting(",".join(targets))
    return Egress(policy, resolver) if resolver else Egress(policy)


async def test_a_failing_https_fetch_never_reveals_the_token(
    tmp_path: Path, roots: Path, spawned: list[Call]
) -> None:
    port = closed_port()
    source = GitSource(url=f"https://127.0.0.1:{port}/org/repo.git", token=TOKEN)
    lines = Lines()
    egress = allowing(f"127.0.0.1:{port}")

    with pytest.raises(SourceError) as caught:
        await fetch_into(tmp_path, source, roots, on_line=lines, egress=egress)
    with pytest.raises(SourceError) as resolving:
        await resolve_commit(source, local_roots=[roots], on_line=lines, egress=egress)

    for error in (caught.value, resolving.value):
        assert error.reason == "CLONE_FAILED" and error.retryable
        assert f"127.0.0.1 port {port}" in error.message
        for shown in (error.message, str(error), repr(error)):
            assert TOKEN not in shown and TOKEN_B64 not in shown
    assert TOKEN not in repr(source)
    assert lines.seen and TOKEN not in lines.text() and TOKEN_B64 not in lines.text()
    assert not (tmp_path / "work").exists()
    for argv, env in spawned:
        assert not any(TOKEN in arg or TOKEN_B64 in arg for arg in argv)
        assert env["GIT_CONFIG_KEY_0"] == f"http.https://127.0.0.1:{port}/.extraHeader"
        assert env["GIT_CONFIG_VALUE_0"] == f"Authorization: Basic {TOKEN_B64}"


async def test_every_git_command_runs_hardened(
    tmp_path: Path, repo: Repo, roots: Path, spawned: list[Call]
) -> None:
    await fetch_into(tmp_path, GitSource(url=str(repo.path)), roots)
    await resolve_commit(GitSource(url=str(repo.path)), local_roots=[roots])
    required = [
        "protocol.allow=never",
        "protocol.https.allow=always",
        "protocol.ssh.allow=always",
        "protocol.file.allow=always",
        "core.hooksPath=/dev/null",
        "core.fsmonitor=false",
        "submodule.recurse=false",
    ]
    assert len(spawned) >= 5
    for argv, env in spawned:
        assert argv[0] == "git"
        configs = [argv[i + 1] for i, arg in enumerate(argv) if arg == "-c"]
        assert set(required) <= set(configs)
        if str(repo.path) in argv:
            assert argv[argv.index(str(repo.path)) - 1] == "--"
        assert env["GIT_ALLOW_PROTOCOL"] == "https:ssh:file"
        assert env["GIT_TERMINAL_PROMPT"] == "0"
        assert env["GIT_CONFIG_NOSYSTEM"] == "1"
        assert env["GIT_CONFIG_GLOBAL"] == "/dev/null"
        assert env["GIT_ASKPASS"] == ""
        assert env["HOME"] != os.environ.get("HOME") and "GIT_CONFIG_COUNT" not in env
    assert any("fetch" in argv for argv, _ in spawned)
    assert any("ls-remote" in argv for argv, _ in spawned)


@dataclass
class Forge:
    """An https server that answers 404 to everything, recording what git sent."""

    url: str
    authorizations: list[str] = field(default_factory=list)
    token_in_a_process_list: list[bool] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)  # "host-header path"
    port: int = 0
    answer: bytes = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


def token_in_any_cmdline() -> bool:
    found = False
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        found |= TOKEN.encode() in cmdline or TOKEN_B64.encode() in cmdline
    return found


@pytest.fixture
def certificate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and forge.test, which git is told to trust."""
    cert_path, key_path = self_signed("127.0.0.1", "forge.test").write(tmp_path, "forge")
    monkeypatch.setenv("GIT_SSL_CAINFO", str(cert_path))
    return cert_path, key_path


@pytest.fixture
async def forge(certificate: tuple[Path, Path]) -> AsyncIterator[Forge]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    recorded = Forge(url="")

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        host = ""
        for header in head.split("\r\n"):
            if header.lower().startswith("authorization:"):
                recorded.authorizations.append(header.split(":", 1)[1].strip())
            if header.lower().startswith("host:"):
                host = header.split(":", 1)[1].strip()
        recorded.requests.append(f"{host} {head.split(' ')[1]}")
        recorded.token_in_a_process_list.append(token_in_any_cmdline())
        writer.write(recorded.answer)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=context)
    recorded.port = server.sockets[0].getsockname()[1]
    recorded.url = f"https://127.0.0.1:{recorded.port}/org/repo.git"
    async with server:
        yield recorded


async def test_the_token_reaches_the_server_as_a_header_and_never_a_process_list(
    tmp_path: Path, roots: Path, forge: Forge
) -> None:
    source = GitSource(url=forge.url, token=TOKEN)
    lines = Lines()
    egress = allowing(forge.target)
    with pytest.raises(SourceError) as caught:
        await fetch_into(tmp_path, source, roots, on_line=lines, egress=egress)
    with pytest.raises(SourceError):
        await resolve_commit(source, local_roots=[roots], on_line=lines, egress=egress)

    assert caught.value.reason == "CLONE_FAILED"
    assert "not found" in caught.value.message
    assert len(forge.authorizations) >= 2
    assert set(forge.authorizations) == {f"Basic {TOKEN_B64}"}
    assert forge.token_in_a_process_list and not any(forge.token_in_a_process_list)
    assert TOKEN not in lines.text() and TOKEN_B64 not in lines.text()


async def test_a_token_goes_only_to_https(
    tmp_path: Path, repo: Repo, roots: Path, spawned: list[Call]
) -> None:
    await fetch_into(tmp_path, GitSource(url=str(repo.path), token=TOKEN), roots)
    assert spawned and all("GIT_CONFIG_COUNT" not in env for _, env in spawned)


# --- the egress guard -------------------------------------------------------------------------


@dataclass
class Listener:
    """A TCP listener on 127.0.0.1 that counts the connections it accepted."""

    port: int = 0
    accepted: int = 0


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    seen = Listener()

    async def count(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.accepted += 1
        writer.close()

    server = await asyncio.start_server(count, "127.0.0.1", 0)
    seen.port = server.sockets[0].getsockname()[1]
    async with server:
        yield seen


def resolving_to(*addresses: str) -> Any:
    async def resolve(host: str, port: int) -> list[IPAddress]:
        return [ipaddress.ip_address(a) for a in addresses]

    return resolve


REFUSED_REMOTES = [
    "https://127.0.0.1:{port}/org/repo.git",
    "https://127.1:{port}/org/repo.git",
    "https://localhost:{port}/org/repo.git",
    "https://[::ffff:127.0.0.1]:{port}/org/repo.git",
    "https://[::1]:{port}/org/repo.git",
    "ssh://git@127.0.0.1:{port}/org/repo.git",
    "git@localhost:org/repo.git",
    "https://169.254.169.254/latest/meta-data",
    "https://10.1.2.3/org/repo.git",
    "https://0.0.0.0:{port}/org/repo.git",
]


@pytest.mark.parametrize("template", REFUSED_REMOTES)
async def test_a_remote_on_a_refused_address_is_refused_before_git_runs(
    tmp_path: Path, roots: Path, spawned: list[Call], listener: Listener, template: str
) -> None:
    source = GitSource(url=template.format(port=listener.port))
    # another port of the same host is allow-listed: not this one
    egress = allowing(f"127.0.0.1:{listener.port + 1}")

    assert await refused(source, tmp_path, roots, spawned, egress=egress) == "TARGET_NOT_ALLOWED"
    with pytest.raises(SourceError) as caught:
        await resolve_commit(source, local_roots=[roots], egress=egress)
    assert caught.value.reason == "TARGET_NOT_ALLOWED" and not caught.value.retryable
    assert "allow-lists" in caught.value.message
    assert spawned == [] and listener.accepted == 0


async def test_a_name_that_resolves_to_any_refused_address_is_refused(
    tmp_path: Path, roots: Path, spawned: list[Call]
) -> None:
    # e.g. rebound since the service was saved: the check is made now, before git runs
    egress = Egress(resolver=resolving_to("93.184.215.14", "127.0.0.1"))
    source = GitSource(url="https://rebound.example/org/repo.git")
    assert await refused(source, tmp_path, roots, spawned, egress=egress) == "TARGET_NOT_ALLOWED"
    assert spawned == []


async def test_git_connects_to_the_checked_address_and_nowhere_else(
    tmp_path: Path, roots: Path, forge: Forge, spawned: list[Call]
) -> None:
    """The system knows no forge.test: git reaches the forge only through the pin."""
    egress = allowing(forge.target, resolver=resolving_to("127.0.0.1"))
    source = GitSource(url=f"https://forge.test:{forge.port}/org/repo.git")

    with pytest.raises(SourceError) as caught:
        await fetch_into(tmp_path, source, roots, egress=egress)
    with pytest.raises(SourceError):
        await resolve_commit(source, local_roots=[roots], egress=egress)

    assert caught.value.reason == "CLONE_FAILED" and "not found" in caught.value.message
    assert forge.requests and {r.split()[0] for r in forge.requests} == {f"forge.test:{forge.port}"}
    pin = f"http.curloptResolve=forge.test:{forge.port}:127.0.0.1"
    remote_calls = [argv for argv, _ in spawned if source.url in argv]
    assert len(remote_calls) == 2
    for argv in remote_calls:
        assert pin in argv and "http.followRedirects=false" in argv


async def test_ssh_connects_to_the_checked_address_and_checks_the_host_key_by_name(
    tmp_path: Path, roots: Path, listener: Listener, spawned: list[Call]
) -> None:
    """The system knows no forge.test: ssh reaches the listener only through the pin."""
    egress = allowing(f"127.0.0.1:{listener.port}", resolver=resolving_to("127.0.0.1"))
    source = GitSource(url=f"ssh://git@forge.test:{listener.port}/org/repo.git")

    assert await refused(source, tmp_path, roots, spawned, egress=egress) == "CLONE_FAILED"
    assert listener.accepted >= 1
    pinned = f"ssh://git@127.0.0.1:{listener.port}/org/repo.git"
    calls = [(argv, env) for argv, env in spawned if pinned in argv]
    assert calls and not any(source.url in argv for argv, _ in spawned)
    for _, env in calls:
        alias = f"'[forge.test]:{listener.port}'"
        assert env["GIT_SSH_COMMAND"].endswith(f"-o HostKeyAlias={alias} -o CheckHostIP=no")


@pytest.mark.parametrize(
    ("url", "address", "pinned", "alias"),
    [
        ("git@forge.test:org/repo.git", "127.0.0.1", "git@127.0.0.1:org/repo.git", "forge.test"),
        ("forge.test:repo.git", "::1", "[::1]:repo.git", "forge.test"),
        ("ssh://forge.test/~u/r.git", "::1", "ssh://[::1]/~u/r.git", "forge.test"),
    ],
)
async def test_ssh_remotes_are_rewritten_to_the_checked_address(
    tmp_path: Path,
    roots: Path,
    spawned: list[Call],
    url: str,
    address: str,
    pinned: str,
    alias: str,
) -> None:
    shown = f"[{address}]" if ":" in address else address
    egress = allowing(f"{shown}:22", resolver=resolving_to(address))
    await refused(GitSource(url=url), tmp_path, roots, spawned, egress=egress)
    calls = [env for argv, env in spawned if pinned in argv]
    assert calls and all(f"HostKeyAlias={alias} " in env["GIT_SSH_COMMAND"] for env in calls)


async def test_git_follows_no_redirect(
    tmp_path: Path, roots: Path, forge: Forge, listener: Listener
) -> None:
    elsewhere = f"https://127.0.0.1:{listener.port}/org/repo.git/info/refs"
    forge.answer = (
        f"HTTP/1.1 302 Found\r\nLocation: {elsewhere}\r\nContent-Length: 0\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    # both allow-listed: only the refusal to follow redirects keeps git away from the listener
    egress = allowing(forge.target, f"127.0.0.1:{listener.port}")

    with pytest.raises(SourceError) as caught:
        await fetch_into(tmp_path, GitSource(url=forge.url), roots, egress=egress)
    assert caught.value.reason == "CLONE_FAILED"
    assert forge.requests and listener.accepted == 0


# --- processes and timeouts -------------------------------------------------------------------

SHELL_ENV = {"PATH": os.environ["PATH"]}


async def wait_for(condition: Callable[[], bool]) -> None:
    """Up to 60 s: a crowded machine can take many seconds to deliver and reap."""
    for _ in range(3000):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition never became true")


async def test_run_process_streams_lines_and_redacts(tmp_path: Path) -> None:
    lines = Lines()
    script = f"printf 'a\\rb\\r\\nc'; printf 'error {TOKEN}\\n' >&2; exit 3"
    result = await run_process(
        ["sh", "-c", script], env=SHELL_ENV, on_line=lines, secrets=(TOKEN,), timeout_s=60
    )
    assert result.returncode == 3
    assert lines.seen.count(("stdout", "a")) == 1
    assert ("stdout", "b") in lines.seen and ("stdout", "c") in lines.seen
    assert ("stderr", "error ***") in lines.seen
    assert result.stderr_tail == ("error ***",)


async def test_a_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    script = f"sleep 30 >/dev/null 2>&1 & echo $! > {pid_file}; wait"  # the pipes are not held
    with pytest.raises(SourceError) as caught:
        await run_process(["sh", "-c", script], env=SHELL_ENV, timeout_s=0.5)
    assert caught.value.reason == "TIMEOUT" and caught.value.retryable
    await wait_for(lambda: is_gone(int(pid_file.read_text())))


async def test_cancelling_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    script = f"sleep 30 >/dev/null 2>&1 & echo $! > {pid_file}; wait"  # the pipes are not held
    task = asyncio.create_task(run_process(["sh", "-c", script], env=SHELL_ENV))
    await wait_for(lambda: pid_file.exists() and pid_file.read_text().strip() != "")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_for(lambda: is_gone(int(pid_file.read_text())))


async def test_a_fetch_over_its_time_limit_times_out_and_cleans_up(
    tmp_path: Path, repo: Repo, roots: Path, spawned: list[Call]
) -> None:
    source = GitSource(url=str(repo.path))
    assert await refused(source, tmp_path, roots, spawned, timeout_s=0.001) == "TIMEOUT"
    for argv, _ in spawned:
        assert argv[0] == "git"
