"""Incoming git deliveries: each provider's signature checked over the raw body, the push
read from each provider's payload, repositories matched whatever their transport."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from slipway_libs.errors import BusinessError
from slipway_scheduler.domain import git_hooks
from slipway_scheduler.domain.git_hooks import Provider

SECRET = "ghsec_test-secret"
BODY = b'{"ref": "refs/heads/main", "after": "' + b"a" * 40 + b'"}'
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def github_headers(body: bytes, secret: str = SECRET, event: str = "push") -> dict[str, str]:
    mac = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "x-github-event": event,
        "x-github-delivery": "d-1",
        "x-hub-signature-256": f"sha256={mac}",
    }


def test_a_github_delivery_verifies_only_with_the_secret_over_the_exact_body() -> None:
    received = git_hooks.delivery(github_headers(BODY), BODY)
    assert (received.provider, received.event, received.delivery_id) == (
        Provider.GITHUB,
        "push",
        "d-1",
    )
    assert git_hooks.signed(SECRET, received, BODY)
    assert not git_hooks.signed("another", received, BODY)
    assert not git_hooks.signed(SECRET, received, BODY + b" ")  # a re-serialized body fails
    bare = git_hooks.delivery({**github_headers(BODY), "x-hub-signature-256": "sha256="}, BODY)
    assert not git_hooks.signed(SECRET, bare, BODY)
    unsigned = {k: v for k, v in github_headers(BODY).items() if k != "x-hub-signature-256"}
    assert not git_hooks.signed(SECRET, git_hooks.delivery(unsigned, BODY), BODY)


def test_a_gitea_delivery_is_a_bare_hex_hmac_and_wins_over_its_github_headers() -> None:
    mac = hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()
    headers = {
        # Gitea and Forgejo send GitHub's headers too; their own say what they are
        **github_headers(BODY, secret="wrong"),
        "x-gitea-event": "push",
        "x-gitea-delivery": "g-1",
        "x-gitea-signature": mac,
    }
    received = git_hooks.delivery(headers, BODY)
    assert (received.provider, received.delivery_id) == (Provider.GITEA, "g-1")
    assert git_hooks.signed(SECRET, received, BODY)
    assert not git_hooks.signed(SECRET, received, BODY[:-1])
    assert not git_hooks.signed(
        SECRET, git_hooks.delivery({**headers, "x-gitea-signature": "sha256=" + mac}, BODY), BODY
    )


def test_a_gitlab_delivery_carries_the_secret_itself() -> None:
    headers = {
        "x-gitlab-event": "Push Hook",
        "x-gitlab-event-uuid": "u-1",
        "x-gitlab-token": SECRET,
    }
    received = git_hooks.delivery(headers, BODY)
    assert (received.provider, received.delivery_id) == (Provider.GITLAB, "u-1")
    assert git_hooks.is_push(received)
    assert git_hooks.signed(SECRET, received, BODY)
    assert not git_hooks.signed(SECRET + "x", git_hooks.delivery(headers, BODY), BODY)
    wrong = git_hooks.delivery({**headers, "x-gitlab-token": SECRET[:-1]}, BODY)
    assert not git_hooks.signed(SECRET, wrong, BODY)


@pytest.mark.parametrize("provider", list(Provider))
def test_sign_makes_what_signed_accepts(provider: Provider) -> None:
    event, id_header, signature_header = {
        Provider.GITHUB: ("x-github-event", "x-github-delivery", "x-hub-signature-256"),
        Provider.GITLAB: ("x-gitlab-event", "x-gitlab-event-uuid", "x-gitlab-token"),
        Provider.GITEA: ("x-gitea-event", "x-gitea-delivery", "x-gitea-signature"),
    }[provider]
    headers = {
        event: "push",
        id_header: "x",
        signature_header: git_hooks.sign(provider, SECRET, BODY),
    }
    assert git_hooks.signed(SECRET, git_hooks.delivery(headers, BODY), BODY)


def test_a_delivery_without_a_provider_or_with_bad_headers_is_refused() -> None:
    with pytest.raises(BusinessError) as unknown:
        git_hooks.delivery({"x-hub-signature-256": "sha256=00"}, BODY)
    assert (unknown.value.status_code, unknown.value.code) == (400, "UNKNOWN_GIT_PROVIDER")
    with pytest.raises(BusinessError) as bad:
        git_hooks.delivery({"x-github-event": "push", "x-github-delivery": "x" * 201}, BODY)
    assert bad.value.code == "INVALID_GIT_DELIVERY"


def test_without_a_delivery_id_the_body_stands_for_it() -> None:
    headers = {"x-gitlab-event": "Push Hook", "x-gitlab-token": SECRET}
    first = git_hooks.delivery(headers, BODY)
    assert first.delivery_id == git_hooks.delivery(headers, BODY).delivery_id
    assert first.delivery_id != git_hooks.delivery(headers, BODY + b" ").delivery_id


def github_push(ref: str = "refs/heads/main", after: str = COMMIT) -> bytes:
    return json.dumps(
        {
            "ref": ref,
            "before": "0" * 40,
            "after": after,
            "repository": {
                "full_name": "acme/shop",
                "clone_url": "https://github.com/acme/shop.git",
                "ssh_url": "git@github.com:acme/shop.git",
                "html_url": "https://github.com/acme/shop",
            },
            "head_commit": {"id": after},
        }
    ).encode()


def test_a_github_push_names_its_branch_commit_and_repository() -> None:
    push = git_hooks.push(github_push(after=COMMIT.upper()))
    assert push is not None
    assert (push.branch, push.commit) == ("main", COMMIT)
    assert "https://github.com/acme/shop.git" in push.repository_urls


def test_a_gitlab_push_names_the_project_urls() -> None:
    body = json.dumps(
        {
            "object_kind": "push",
            "ref": "refs/heads/feature/x",
            "after": COMMIT,
            "project": {
                "git_http_url": "https://gitlab.example.com/acme/shop.git",
                "git_ssh_url": "git@gitlab.example.com:acme/shop.git",
                "web_url": "https://gitlab.example.com/acme/shop",
            },
        }
    ).encode()
    push = git_hooks.push(body)
    assert push is not None and push.branch == "feature/x"
    assert "git@gitlab.example.com:acme/shop.git" in push.repository_urls


@pytest.mark.parametrize(
    "body",
    [
        github_push(ref="refs/tags/v1"),  # a tag
        github_push(after="0" * 40),  # the branch deleted
        github_push(after="abc"),  # not a commit
        b"[1, 2]",
        b"not json",
        json.dumps({"ref": "refs/heads/main", "after": COMMIT}).encode(),  # no repository
    ],
)
def test_what_is_not_a_branch_push_deploys_nothing(body: bytes) -> None:
    assert git_hooks.push(body) is None


def test_is_push_per_provider() -> None:
    github = git_hooks.delivery(github_headers(BODY, event="pull_request"), BODY)
    assert not git_hooks.is_push(github)
    assert git_hooks.is_push(git_hooks.delivery(github_headers(BODY), BODY))


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/Acme/Shop.git",
        "https://github.com/acme/shop",
        "https://github.com/acme/shop/",
        "ssh://git@github.com:22/acme/shop.git",
        "git@github.com:acme/shop.git",
        "https://token@github.com/acme/shop.git",
    ],
)
def test_one_repository_one_key_whatever_the_transport(url: str) -> None:
    assert git_hooks.repository_key(url) == "github.com/acme/shop"


def test_local_and_other_repositories_keep_their_own_keys() -> None:
    assert git_hooks.repository_key("/srv/repos/web") == "/srv/repos/web"
    assert git_hooks.repository_key("file:///srv/repos/web.git") == "/srv/repos/web"
    assert git_hooks.repository_key("https://github.com/acme/shop-api") != (
        git_hooks.repository_key("https://github.com/acme/shop")
    )
    assert git_hooks.repository_key("https://gitlab.com/acme/shop") != (
        git_hooks.repository_key("https://github.com/acme/shop")
    )
