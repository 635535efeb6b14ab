"""Git webhooks through the gateway (issue 13, item 4): a provider's push, sent as GitHub sends
it (the raw body signed with the endpoint's secret, no credentials), deploys the application
whose repository and branch it names at that exact commit, with the trigger ``git_push``; a bad
signature answers 401 and triggers nothing; the same delivery sent again triggers nothing
twice; a push to another branch triggers nothing; a body over the limit is refused. The
repository is a real local git one."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from slipway_libs.testing.platform import Platform
from slipway_libs.testing.public_api import eventually
from tests.e2e.deploying import Story, commit_page, git, new_environment, web_repo

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

KNOWN_WITHIN_S = 30


@pytest.fixture(scope="module")
async def platform(platform_factory, repos, devstack) -> Platform:
    if "SLIPWAY_BASE_IMAGE" not in devstack.env:
        pytest.fail("the devstack has no registry/base image: run `make infra-up`")
    return await platform_factory(
        ["identity", "catalog", "builder", "deployer", "scheduler", "gateway"],
        extra_env={"SLIPWAY_GIT_LOCAL_ROOTS": str(repos)},
    )


def github_push(repo: Path, branch: str, commit: str) -> bytes:
    """A push event's body as GitHub sends it (the fields Slipway reads, and some it does not)."""
    return json.dumps(
        {
            "ref": f"refs/heads/{branch}",
            "before": "0" * 40,
            "after": commit,
            "created": False,
            "deleted": False,
            "repository": {
                "name": repo.name,
                "full_name": f"acme/{repo.name}",
                "clone_url": str(repo),
            },
            "pusher": {"name": "dev"},
            "head_commit": {"id": commit, "message": "a change"},
        },
        indent=2,
    ).encode()


def signed(secret: str, body: bytes, delivery: str) -> dict[str, str]:
    mac = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "content-type": "application/json",
        "user-agent": "GitHub-Hookshot/test",
        "x-github-event": "push",
        "x-github-delivery": delivery,
        "x-hub-signature-256": f"sha256={mac}",
    }


async def git_deployments(story: Story) -> list[dict[str, Any]]:
    history = await story.get(f"/environments/{story.env}/deployments")
    return [d for d in history["items"] if d["trigger"] == "git_push"]


async def test_a_signed_push_deploys_the_matching_application_at_its_commit(
    api: httpx.AsyncClient, repos: Path, devstack
) -> None:
    repo = web_repo(repos / "pushed", devstack.env["SLIPWAY_BASE_IMAGE"], "<h1>first</h1>")
    owner, _, env = await new_environment(api)
    story = Story(api, owner, env)
    [org] = [o["id"] for o in (await story.get("/organizations"))["items"]]
    web = await story.post(
        f"/environments/{env}/services",
        {
            "name": "web",
            "kind": "application",
            "git": {"url": str(repo), "branch": "main"},
            "ports": [{"port": 8080, "public": True}],
        },
        expect=201,
    )

    async def deployer_knows_it() -> bool:
        answer = await api.get(f"/environments/{env}/status", headers=owner.auth)
        return answer.status_code == 200 and len(answer.json()["services"]) == 1

    await eventually(deployer_knows_it, within_s=KNOWN_WITHIN_S)
    hook = await story.post(f"/organizations/{org}/git-webhooks", {"description": "web"}, 201)
    secret, hook_path = hook.pop("secret"), f"/hooks/git/{hook['id']}"
    assert hook["path"] == f"/api/v1{hook_path}"

    commit_page(repo, "<h1>pushed</h1>")
    pushed = git(repo, "rev-parse", "HEAD")
    commit_page(repo, "<h1>later</h1>")  # the branch moved on: the push names its own commit
    body = github_push(repo, "main", pushed)
    delivery = str(uuid.uuid4())

    forged = await api.post(
        hook_path, content=body, headers=signed("not-the-secret", body, delivery)
    )
    assert forged.status_code == 401 and forged.json()["error"]["code"] == "INVALID_SIGNATURE"

    huge = b'{"pad": "' + b"x" * (1024 * 1024) + b'"}'  # over the 1 MiB every request gets
    too_big = await api.post(hook_path, content=huge, headers=signed(secret, huge, delivery))
    assert too_big.status_code == 413, too_big.text

    answer = await api.post(hook_path, content=body, headers=signed(secret, body, delivery))
    assert answer.status_code == 202, answer.text
    record = answer.json()
    assert (record["result"], record["commit"], record["duplicate"]) == ("deployed", pushed, False)
    assert [t["service_id"] for t in record["triggered"]] == [web["id"]]

    async def queued() -> bool:
        return len(await git_deployments(story)) == 1

    await eventually(queued, within_s=KNOWN_WITHIN_S)
    [deployment] = await git_deployments(story)
    assert deployment["service_ids"] == [web["id"]] and deployment["version"] == pushed
    assert deployment["triggered_by"]["origin"] == "git"
    done = await story.settle(deployment["id"])
    assert done["status"] == "SUCCESS", done
    url = (await story.service("web"))["urls"][0]
    async with httpx.AsyncClient(timeout=5) as http:
        assert (await http.get(url)).text == "<h1>pushed</h1>"  # that commit, not the head

    again = await api.post(hook_path, content=body, headers=signed(secret, body, delivery))
    assert again.status_code == 202 and again.json()["duplicate"] is True
    other_branch = github_push(repo, "develop", pushed)
    elsewhere = await api.post(
        hook_path, content=other_branch, headers=signed(secret, other_branch, str(uuid.uuid4()))
    )
    assert elsewhere.status_code == 202 and elsewhere.json()["result"] == "no_match"
    logged = await story.get(f"/organizations/{org}/git-webhooks/{hook['id']}/deliveries")
    assert [(d["result"], d["branch"]) for d in logged["items"]] == [
        ("no_match", "develop"),
        ("deployed", "main"),
    ]

    # a barrier: one environment's commands reach the deployer in order, so once a later push's
    # deployment is queued, whatever the redelivery or the other branch triggered would be too
    head = git(repo, "rev-parse", "HEAD")
    later = github_push(repo, "main", head)
    answer = await api.post(hook_path, content=later, headers=signed(secret, later, "d-later"))
    assert answer.status_code == 202 and answer.json()["result"] == "deployed", answer.text

    async def later_queued() -> bool:
        return any(d["version"] == head for d in await git_deployments(story))

    await eventually(later_queued, within_s=KNOWN_WITHIN_S)
    triggered = await git_deployments(story)
    assert [d["version"] for d in triggered] == [head, pushed]  # newest first: nothing else
    assert (await story.settle(triggered[0]["id"]))["status"] == "SUCCESS"
    async with httpx.AsyncClient(timeout=5) as http:
        assert (await http.get(url)).text == "<h1>later</h1>"
