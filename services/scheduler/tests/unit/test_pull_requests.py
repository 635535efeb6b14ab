"""Pull request deliveries read from each provider's payload: the change they make to a
preview (opened, pushed, closed), the base and head branches, the head commit; actions that
change no code, forks and unreadable bodies ask nothing."""

from __future__ import annotations

from typing import Any

import pytest

from slipway_scheduler.domain import pull_requests as prs
from slipway_scheduler.domain.git_hooks import Delivery, Provider
from slipway_scheduler.domain.pull_requests import Change

HEAD = "ABCDEF0123456789abcdef0123456789abcdef01"
REPO = {"clone_url": "https://github.com/acme/shop.git", "ssh_url": "git@github.com:acme/shop"}


def github(action: str, *, head_repo: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "action": action,
        "number": 42,
        "pull_request": {
            "number": 42,
            "head": {"ref": "feature/x", "sha": HEAD, "repo": head_repo or REPO},
            "base": {"ref": "main", "sha": "1" * 40, "repo": REPO},
        },
        "repository": REPO,
    }


def gitlab(action: str, *, source: str = "https://gitlab.com/acme/shop.git") -> dict[str, Any]:
    return {
        "object_kind": "merge_request",
        "project": {"git_http_url": "https://gitlab.com/acme/shop.git"},
        "object_attributes": {
            "iid": 7,
            "action": action,
            "source_branch": "feature/y",
            "target_branch": "main",
            "last_commit": {"id": HEAD},
            "source": {"git_http_url": source},
            "target": {"git_http_url": "https://gitlab.com/acme/shop.git"},
        },
    }


@pytest.mark.parametrize(
    ("action", "change"),
    [
        ("opened", Change.OPENED),
        ("reopened", Change.OPENED),
        ("synchronize", Change.PUSHED),
        ("synchronized", Change.PUSHED),  # Gitea
        ("closed", Change.CLOSED),
    ],
)
def test_github_and_gitea_actions_say_what_happens_to_the_preview(
    action: str, change: Change
) -> None:
    for provider in (Provider.GITHUB, Provider.GITEA):
        pr = prs.pull_request(provider, github(action))
        assert pr is not None
        assert (pr.number, pr.change, pr.base_branch, pr.head_branch) == (
            42,
            change,
            "main",
            "feature/x",
        )
        assert pr.head_commit == HEAD.lower()
        assert "https://github.com/acme/shop.git" in pr.repository_urls


@pytest.mark.parametrize(
    ("action", "change"),
    [
        ("open", Change.OPENED),
        ("reopen", Change.OPENED),
        ("update", Change.PUSHED),
        ("close", Change.CLOSED),
        ("merge", Change.CLOSED),
    ],
)
def test_gitlab_merge_request_actions(action: str, change: Change) -> None:
    pr = prs.pull_request(Provider.GITLAB, gitlab(action))
    assert pr is not None
    assert (pr.number, pr.change, pr.base_branch, pr.head_branch, pr.head_commit) == (
        7,
        change,
        "main",
        "feature/y",
        HEAD.lower(),
    )


def test_actions_that_change_no_code_forks_and_bad_bodies_ask_nothing() -> None:
    assert prs.pull_request(Provider.GITHUB, github("labeled")) is None
    assert prs.pull_request(Provider.GITLAB, gitlab("approved")) is None
    fork = {"clone_url": "https://github.com/someone/shop.git"}
    assert prs.pull_request(Provider.GITHUB, github("opened", head_repo=fork)) is None
    assert prs.pull_request(Provider.GITLAB, gitlab("open", source="https://x.org/o/r")) is None
    assert prs.pull_request(Provider.GITHUB, None) is None
    assert prs.pull_request(Provider.GITHUB, ["opened"]) is None
    broken = github("opened")
    broken["pull_request"]["head"]["sha"] = "not-a-commit"
    assert prs.pull_request(Provider.GITHUB, broken) is None
    no_number = github("opened")
    no_number["number"] = True  # a boolean is not a number here
    assert prs.pull_request(Provider.GITHUB, no_number) is None
    no_repository = github("opened")
    del no_repository["repository"], no_repository["pull_request"]["base"]["repo"]
    assert prs.pull_request(Provider.GITHUB, no_repository) is None


def test_the_event_header_says_which_deliveries_are_pull_requests() -> None:
    def delivery(provider: Provider, event: str) -> Delivery:
        return Delivery(provider=provider, event=event, delivery_id="d", signature=None)

    assert prs.is_pull_request(delivery(Provider.GITHUB, "pull_request"))
    assert prs.is_pull_request(delivery(Provider.GITEA, "pull_request"))
    assert prs.is_pull_request(delivery(Provider.GITLAB, "Merge Request Hook"))
    assert not prs.is_pull_request(delivery(Provider.GITHUB, "push"))
    assert not prs.is_pull_request(delivery(Provider.GITLAB, "pull_request"))
    assert prs.preview_name(42) == "pr-42"


def test_a_pull_request_from_a_fork_is_told_apart_for_its_record() -> None:
    fork = {"clone_url": "https://github.com/someone/shop.git"}
    for provider in (Provider.GITHUB, Provider.GITEA):
        for action in ("opened", "synchronize", "closed"):
            assert prs.from_fork(provider, github(action, head_repo=fork))
        assert not prs.from_fork(provider, github("labeled", head_repo=fork))
        assert not prs.from_fork(provider, github("opened"))
    # the same repository under another transport is no fork
    same = {"ssh_url": "git@github.com:acme/shop.git"}
    assert not prs.from_fork(Provider.GITHUB, github("opened", head_repo=same))
    assert prs.from_fork(Provider.GITLAB, gitlab("open", source="https://gitlab.com/else/shop"))
    assert not prs.from_fork(Provider.GITLAB, gitlab("open"))
    assert not prs.from_fork(Provider.GITLAB, gitlab("approved", source="https://x.org/o/r"))
    assert not prs.from_fork(Provider.GITHUB, None)
