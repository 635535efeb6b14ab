"""Pull requests' preview environments, path filters and freshness through the gateway (issue
13, items 4 and 6), with deliveries signed as GitHub signs them and a real local git
repository:

- a pull request opened against the branch of an environment whose rule has ``auto_preview``
  creates a ``preview`` environment ``pr-<n>`` that serves the pull request's branch; a push to
  the pull request redeploys it at the new commit; closing it deletes the environment and
  nothing of it runs any more; the blueprint itself is never deployed by any of it;
- a push that changes only files outside an application's path filters deploys nothing, and
  the environment says a new commit is available (the commit named); each history entry shows
  the commit it built, and a redeploy is recorded with the trigger ``redeploy``."""

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
from tests.e2e.deploying import (
    Story,
    commit_page,
    git,
    new_environment,
    port_open,
    service_processes,
    web_repo,
)
from tests.e2e.test_git_webhooks import github_push

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


def signed(secret: str, body: bytes, event: str) -> dict[str, str]:
    mac = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "content-type": "application/json",
        "user-agent": "GitHub-Hookshot/test",
        "x-github-event": event,
        "x-github-delivery": str(uuid.uuid4()),
        "x-hub-signature-256": f"sha256={mac}",
    }


def pull_request(repo: Path, action: str, commit: str, number: int = 42) -> bytes:
    """A pull_request event's body as GitHub sends it (the fields Slipway reads, and more), of
    the pull request of branch ``feature`` into ``main``."""
    repository = {"name": repo.name, "full_name": f"acme/{repo.name}", "clone_url": str(repo)}
    return json.dumps(
        {
            "action": action,
            "number": number,
            "pull_request": {
                "number": number,
                "state": "closed" if action == "closed" else "open",
                "merged": False,
                "title": "A feature",
                "head": {"ref": "feature", "sha": commit, "repo": repository},
                "base": {"ref": "main", "sha": git(repo, "rev-parse", "main"), "repo": repository},
            },
            "repository": repository,
            "sender": {"login": "dev"},
        },
        indent=2,
    ).encode()


class Hook:
    """An organization's git webhook endpoint, and deliveries to it as the provider sends them."""

    def __init__(self, api: httpx.AsyncClient, created: dict[str, Any]) -> None:
        self.api, self.secret, self.path = api, created["secret"], f"/hooks/git/{created['id']}"

    async def send(self, body: bytes, event: str) -> dict[str, Any]:
        answer = await self.api.post(
            self.path, content=body, headers=signed(self.secret, body, event)
        )
        assert answer.status_code == 202, answer.text
        record: dict[str, Any] = answer.json()
        return record


async def new_hook(story: Story) -> Hook:
    [org] = [o["id"] for o in (await story.get("/organizations"))["items"]]
    return Hook(story.api, await story.post(f"/organizations/{org}/git-webhooks", {}, 201))


async def history(story: Story, env: str) -> list[dict[str, Any]]:
    return (await story.get(f"/environments/{env}/deployments"))["items"]


async def page(url: str) -> str:
    async with httpx.AsyncClient(timeout=5) as http:
        return (await http.get(url)).text


async def test_a_pull_request_previews_its_branch_until_it_closes(
    api: httpx.AsyncClient, repos: Path, devstack
) -> None:
    repo = web_repo(repos / "previewed", devstack.env["SLIPWAY_BASE_IMAGE"], "<h1>main</h1>")
    git(repo, "checkout", "-q", "-b", "feature")
    commit_page(repo, "<h1>feature one</h1>")
    first = git(repo, "rev-parse", "HEAD")
    owner, _, blueprint = await new_environment(api)
    story = Story(api, owner, blueprint)
    await story.post(
        f"/environments/{blueprint}/services",
        {
            "name": "web",
            "kind": "application",
            "git": {"url": str(repo), "branch": "main"},
            "ports": [{"port": 8080, "public": True}],
        },
        expect=201,
    )
    rule = await api.put(
        f"/environments/{blueprint}/deployment-rule",
        json={"auto_preview": True},
        headers=owner.auth,
    )
    assert rule.status_code == 200, rule.text
    hook = await new_hook(story)

    opened: dict[str, Any] = {}

    async def previewed() -> bool:  # the scheduler's projection has the rule and the app
        opened.update(await hook.send(pull_request(repo, "opened", first), "pull_request"))
        return opened["result"] == "preview_opened"

    await eventually(previewed, within_s=KNOWN_WITHIN_S)
    [entry] = opened["triggered"]
    assert (entry["blueprint_environment_id"], entry["pull_request"]) == (blueprint, 42)
    preview = entry["environment_id"]

    async def created() -> bool:
        answer = await api.get(f"/environments/{preview}", headers=owner.auth)
        return answer.status_code == 200

    await eventually(created, within_s=KNOWN_WITHIN_S)
    env = await story.get(f"/environments/{preview}")
    assert (env["name"], env["mode"]) == ("pr-42", "preview")

    async def deployed_at(commit: str) -> dict[str, Any]:
        found: list[dict[str, Any]] = []

        async def queued() -> bool:
            answer = await api.get(f"/environments/{preview}/deployments", headers=owner.auth)
            if answer.status_code == 404:  # the deployer has not heard of the preview yet
                return False
            assert answer.status_code == 200, answer.text
            found[:] = [d for d in answer.json()["items"] if d["version"] == commit]
            return bool(found)

        await eventually(queued, within_s=KNOWN_WITHIN_S)
        assert found[0]["trigger"] == "preview", found[0]
        done = await story.settle(found[0]["id"])
        assert done["status"] == "SUCCESS", done
        return done

    await deployed_at(first)
    status = await story.get(f"/environments/{preview}/status")
    [web] = status["services"]
    assert status["urls"] == web["urls"] and web["urls"], status
    assert await page(web["urls"][0]) == "<h1>feature one</h1>"  # the branch, not main

    again = await hook.send(pull_request(repo, "reopened", first), "pull_request")
    assert again["result"] == "no_match", "a reopen at the same commit asked for more"

    commit_page(repo, "<h1>feature two</h1>")
    second = git(repo, "rev-parse", "HEAD")
    pushed = await hook.send(pull_request(repo, "synchronize", second), "pull_request")
    assert pushed["result"] == "preview_updated"
    assert pushed["triggered"][0]["environment_id"] == preview
    done = await deployed_at(second)
    assert [c["commit"] for c in done["commits"]] == [second]
    url = (await story.get(f"/environments/{preview}/status"))["services"][0]["urls"][0]
    assert await page(url) == "<h1>feature two</h1>"

    closed = await hook.send(pull_request(repo, "closed", second), "pull_request")
    assert closed["result"] == "preview_closed"

    async def deleted() -> bool:
        answer = await api.get(f"/environments/{preview}", headers=owner.auth)
        return answer.status_code == 404

    await eventually(deleted, within_s=KNOWN_WITHIN_S)

    async def nothing_runs() -> bool:
        return not port_open(url) and service_processes(web["id"]) == 0

    await eventually(nothing_runs, within_s=120)
    assert await history(story, blueprint) == [], "the blueprint itself was deployed"


async def test_a_filtered_out_push_deploys_nothing_and_says_a_new_commit_is_available(
    api: httpx.AsyncClient, repos: Path, devstack
) -> None:
    repo = web_repo(repos / "filtered", devstack.env["SLIPWAY_BASE_IMAGE"], "<h1>v1</h1>")
    owner, _, env = await new_environment(api)
    story = Story(api, owner, env)
    await story.post(
        f"/environments/{env}/services",
        {
            "name": "web",
            "kind": "application",
            "git": {"url": str(repo), "branch": "main"},
            "ports": [{"port": 8080, "public": True}],
            "path_filters": ["src/**", "Dockerfile"],
        },
        expect=201,
    )
    deployed = git(repo, "rev-parse", "HEAD")
    first = await story.post(f"/environments/{env}/deploy")
    done = await story.settle(first["request_id"])
    assert done["status"] == "SUCCESS", done
    [entry] = await history(story, env)
    assert [c["commit"] for c in entry["commits"]] == [deployed]  # what it built
    status = await story.status()
    assert (status["freshness"], status["services"][0]["deployed_commit"]) == (
        "UP_TO_DATE",
        deployed,
    )

    (repo / "docs").mkdir()
    (repo / "docs" / "guide.md").write_text("how to\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "docs")
    docs = git(repo, "rev-parse", "HEAD")
    body = json.loads(github_push(repo, "main", docs))
    body["commits"] = [{"id": docs, "added": ["docs/guide.md"], "modified": [], "removed": []}]
    hook = await new_hook(story)

    async def out_of_date() -> bool:
        # until the scheduler's projection has the application, a push matches nothing
        record = await hook.send(json.dumps(body).encode(), "push")
        assert record["result"] in ("no_match", "filtered"), record
        current = await story.status()
        return current["freshness"] == "OUT_OF_DATE"

    await eventually(out_of_date, within_s=KNOWN_WITHIN_S)
    status = await story.status()
    assert (status["freshness_reason"], status["available_commit"]) == (
        "new commit available",
        docs,
    )
    # the deploy commands of a push reach the deployer before its news: none came
    assert [d["id"] for d in await history(story, env)] == [entry["id"]]

    redeploy = await story.post(f"/environments/{env}/redeploy")
    newest = (await history(story, env))[0]
    assert (newest["id"], newest["trigger"]) == (redeploy["request_id"], "redeploy")
    assert (await story.settle(redeploy["request_id"]))["status"] == "SUCCESS"
    # a redeploy runs the build it ran before: the pushed commit is still not running
    status = await story.status()
    assert (status["freshness"], status["available_commit"]) == ("OUT_OF_DATE", docs)
    assert status["services"][0]["deployed_commit"] == deployed
    assert [c["commit"] for c in (await history(story, env))[0]["commits"]] == [deployed]
