"""Path filters: globs over whole paths from the repository's root; a push deploys an
application with filters only when a file it changed matches one."""

from __future__ import annotations

import json

import pytest

from slipway_scheduler.domain import git_hooks, path_filters


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("src/**", "src/app/main.py", True),
        ("src/**", "src/main.py", True),
        ("src/**", "docs/src/x", False),
        ("**/*.py", "main.py", True),
        ("**/*.py", "a/b/c.py", True),
        ("**/*.py", "a/b/c.pyc", False),
        ("*.md", "README.md", True),
        ("*.md", "docs/guide.md", False),  # * stays in one directory
        ("Dockerfile", "Dockerfile", True),
        ("Dockerfile", "web/Dockerfile", False),
        ("web/?.txt", "web/a.txt", True),
        ("web/?.txt", "web/ab.txt", False),
        ("/api/**", "api/x", True),  # a leading slash is the root
        ("a+b/(c)", "a+b/(c)", True),  # other characters are themselves
        ("a+b/(c)", "aab/c", False),
    ],
)
def test_a_glob_matches_whole_paths(pattern: str, path: str, matches: bool) -> None:
    assert bool(path_filters.compiled(pattern).fullmatch(path)) is matches


def test_a_push_deploys_when_a_changed_file_matches_or_nothing_filters_it() -> None:
    assert path_filters.wanted([], frozenset({"docs/a.md"}))
    assert path_filters.wanted(["src/**"], frozenset({"docs/a.md", "src/x.py"}))
    assert not path_filters.wanted(["src/**"], frozenset({"docs/a.md"}))
    assert not path_filters.wanted(["src/**"], frozenset())  # a push that changed nothing
    assert path_filters.wanted(["src/**"], None)  # the payload does not say: deploy


def test_the_changed_files_are_every_commits_added_modified_and_removed() -> None:
    body = json.dumps(
        {
            "ref": "refs/heads/main",
            "after": "ab" * 20,
            "repository": {"clone_url": "https://github.com/acme/shop.git"},
            "commits": [
                {"added": ["src/new.py"], "modified": ["README.md"], "removed": []},
                {"added": [], "modified": [], "removed": ["old/x.txt"]},
            ],
        }
    ).encode()
    push = git_hooks.push(body)
    assert push is not None
    assert push.changed_files == {"src/new.py", "README.md", "old/x.txt"}
    bare = json.loads(body)
    del bare["commits"]
    unlisted = git_hooks.push(json.dumps(bare).encode())
    assert unlisted is not None and unlisted.changed_files is None
