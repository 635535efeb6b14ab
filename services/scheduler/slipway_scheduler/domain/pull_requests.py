"""What a pull request (merge request) delivery says, and what it asks of a preview. Pure.

The three providers name the same facts differently:
- GitHub ``X-GitHub-Event: pull_request`` and Gitea/Forgejo ``X-Gitea-Event: pull_request``:
  ``action`` (``opened``, ``reopened``, ``synchronize``/``synchronized``, ``closed``; others,
  such as ``edited`` or ``labeled``, change no code), ``number``, ``pull_request.head.ref`` /
  ``.sha`` / ``.repo``, ``pull_request.base.ref``, ``repository``;
- GitLab ``X-Gitlab-Event: Merge Request Hook``: ``object_attributes.action`` (``open``,
  ``reopen``, ``update``, ``close``, ``merge``), ``.iid``, ``.source_branch``,
  ``.target_branch``, ``.last_commit.id``, ``.source`` / ``.target`` projects, ``project``.

A pull request from a fork is not previewed, as Qovery and Render do by default: its code would
run with the environment's secrets and variables, written by someone outside the organization;
and its head lives in another repository, which the preview (a clone of an environment building
the base repository) does not build. ``from_fork`` tells such a delivery apart, so that its
record says why nothing happened (``fork_refused``) instead of ``ignored``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from slipway_scheduler.domain.git_hooks import Delivery, Provider, repository_key, urls_of

_MAX_BRANCH = 255


class Change(StrEnum):
    OPENED = "opened"  # opened or reopened: the preview is created (or kept)
    PUSHED = "pushed"  # new commits on the head branch: the preview is redeployed
    CLOSED = "closed"  # closed or merged: the preview is deleted


_GITHUB_ACTIONS = {
    "opened": Change.OPENED,
    "reopened": Change.OPENED,
    "synchronize": Change.PUSHED,
    "synchronized": Change.PUSHED,  # Gitea's spelling
    "closed": Change.CLOSED,
}
_GITLAB_ACTIONS = {
    "open": Change.OPENED,
    "reopen": Change.OPENED,
    "update": Change.PUSHED,
    "close": Change.CLOSED,
    "merge": Change.CLOSED,
}


@dataclass(frozen=True)
class PullRequest:
    number: int
    change: Change
    base_branch: str
    head_branch: str
    head_commit: str
    repository_urls: tuple[str, ...]


def is_pull_request(delivery: Delivery) -> bool:
    if delivery.provider is Provider.GITLAB:
        return delivery.event == "Merge Request Hook"
    return delivery.event == "pull_request"


def pull_request(provider: Provider, payload: Any) -> PullRequest | None:
    """The pull request a delivery's decoded body describes, or None when it asks nothing of
    a preview (another action, a fork, a body that cannot be read)."""
    if not isinstance(payload, dict):
        return None
    if provider is Provider.GITLAB:
        return _gitlab(payload)
    return _github(payload)


def from_fork(provider: Provider, payload: Any) -> bool:
    """Whether the delivery is a pull request change (opened, pushed, closed) whose head
    repository is named and is not the base one."""
    if not isinstance(payload, dict):
        return False
    if provider is Provider.GITLAB:
        attributes = _section(payload, "object_attributes")
        change = _GITLAB_ACTIONS.get(str(attributes.get("action")))
        base = urls_of(payload.get("project")) or urls_of(attributes.get("target"))
        head = urls_of(attributes.get("source"))
    else:
        change = _GITHUB_ACTIONS.get(str(payload.get("action")))
        pr = _section(payload, "pull_request")
        base = urls_of(payload.get("repository")) or urls_of(_section(pr, "base").get("repo"))
        head = urls_of(_section(pr, "head").get("repo"))
    return change is not None and bool(base) and _fork(head, base)


def _github(payload: dict[str, Any]) -> PullRequest | None:
    change = _GITHUB_ACTIONS.get(str(payload.get("action")))
    pr = _section(payload, "pull_request")
    head, base = _section(pr, "head"), _section(pr, "base")
    urls = urls_of(payload.get("repository")) or urls_of(base.get("repo"))
    if change is None or not urls or _fork(urls_of(head.get("repo")), urls):
        return None
    return _checked(payload.get("number"), change, base.get("ref"), head.get("ref"), head, urls)


def _gitlab(payload: dict[str, Any]) -> PullRequest | None:
    attributes = _section(payload, "object_attributes")
    change = _GITLAB_ACTIONS.get(str(attributes.get("action")))
    urls = urls_of(payload.get("project")) or urls_of(attributes.get("target"))
    if change is None or not urls or _fork(urls_of(attributes.get("source")), urls):
        return None
    last = _section(attributes, "last_commit")
    return _checked(
        attributes.get("iid"),
        change,
        attributes.get("target_branch"),
        attributes.get("source_branch"),
        {"sha": last.get("id")},
        urls,
    )


def _checked(
    number: Any,
    change: Change,
    base: Any,
    head: Any,
    head_section: dict[str, Any],
    urls: tuple[str, ...],
) -> PullRequest | None:
    commit = head_section.get("sha")
    if not (isinstance(number, int) and not isinstance(number, bool) and 0 < number < 2**31):
        return None
    if not (_branch(base) and _branch(head) and _commit(commit)):
        return None
    assert isinstance(base, str) and isinstance(head, str) and isinstance(commit, str)
    return PullRequest(
        number=number,
        change=change,
        base_branch=base,
        head_branch=head,
        head_commit=commit.lower(),
        repository_urls=urls,
    )


def _section(parent: Any, name: str) -> dict[str, Any]:
    value = parent.get(name) if isinstance(parent, dict) else None
    return value if isinstance(value, dict) else {}


def _fork(head_urls: tuple[str, ...], base_urls: tuple[str, ...]) -> bool:
    """A head repository named, and not the base one."""
    if not head_urls:
        return False
    return not {repository_key(u) for u in head_urls} & {repository_key(u) for u in base_urls}


def _branch(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= _MAX_BRANCH and value.isprintable()


def _commit(value: Any) -> bool:
    return (
        isinstance(value, str)
        and len(value) == 40
        and all(c in "0123456789abcdefABCDEF" for c in value)
        and value != "0" * 40
    )


def preview_name(number: int) -> str:
    """The preview environment's name: the pull request's, as users say it."""
    return f"pr-{number}"
