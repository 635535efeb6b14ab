"""Private repositories (issue 13, item 4) through the gateway: a repository on a private forge
(``git http-backend`` behind https on 127.0.0.1 that answers 401 without the organization's
token) fails to build with a clear reason while the organization has no credential, and builds
and serves its page once the organization registered its token. The token is never answered,
and appears in no deployment message nor build log line. And a commit pushed to a repository
that has no git webhook is noticed by the scheduler's polling (with the organization's token):
the environment becomes out of date with that commit, no delivery sent."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from slipway_libs.testing.git_server import PrivateForge, private_forge, publish_bare
from slipway_libs.testing.platform import Platform
from slipway_libs.testing.public_api import eventually
from tests.e2e.deploying import Story, commit_page, git, new_environment, ready, web_repo

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

TOKEN = "glpat-e2e-private-forge-7f3a9c"
CREDENTIAL_KNOWN_S = 30  # the deployer learns a new credential from the catalog's event


@pytest.fixture(scope="module")
def forge(tmp_path_factory: pytest.TempPathFactory, devstack) -> Iterator[PrivateForge]:
    if "SLIPWAY_BASE_IMAGE" not in devstack.env:
        pytest.fail("the devstack has no registry/base image: run `make infra-up`")
    root = tmp_path_factory.mktemp("forge")
    work = web_repo(
        tmp_path_factory.mktemp("work"), devstack.env["SLIPWAY_BASE_IMAGE"], "<h1>private</h1>"
    )
    publish_bare(work, root, "web")
    with private_forge(root, TOKEN, tmp_path_factory.mktemp("tls")) as served:
        yield served


@pytest.fixture(scope="module")
async def platform(platform_factory, forge: PrivateForge) -> Platform:
    return await platform_factory(
        ["identity", "catalog", "builder", "deployer", "scheduler", "logs", "gateway"],
        extra_env={
            # the forge is on loopback: the builder and the scheduler's polls may reach it,
            # and trust its certificate
            "SLIPWAY_EGRESS_ALLOW": forge.address,
            "GIT_SSL_CAINFO": str(forge.ca_file),
            # the scheduler polls the forge's repositories (no webhook here) every 2 s
            "SLIPWAY_SCHEDULER_GIT_POLL_INTERVAL_S": "2",
            "SLIPWAY_SCHEDULER_GIT_POLL_DISCOVER_S": "1",
        },
    )


async def deploy(story: Story) -> dict[str, Any]:
    request = await story.post(f"/environments/{story.env}/deploy")
    return await story.settle(request["request_id"])


def build_message(done: dict[str, Any]) -> str:
    return str(done["stages"][0]["services"][0]["message"] or "")


async def test_a_private_repository_builds_with_the_organizations_token_only(
    api: httpx.AsyncClient, forge: PrivateForge
) -> None:
    owner, _, env = await new_environment(api)
    story = Story(api, owner, env)
    [org] = [o["id"] for o in (await story.get("/organizations"))["items"]]
    await story.post(
        f"/environments/{env}/services",
        {
            "name": "web",
            "kind": "application",
            "git": {"url": forge.url("web"), "branch": "main"},
            "ports": [{"port": 8080, "public": True}],
        },
        expect=201,
    )
    await ready(story, 1)

    refused = await deploy(story)
    assert (refused["status"], refused["reason"]) == ("ERROR", "BUILD_FAILED"), refused
    assert build_message(refused).startswith("GIT_AUTH_FAILED: "), refused
    assert forge.address in build_message(refused) and "git credential" in build_message(refused)
    assert forge.refused and not forge.served

    credentials = f"/organizations/{org}/git-credentials"
    body = {"name": "forge", "kind": "token", "host": forge.address, "token": TOKEN}
    created = await story.post(credentials, body, expect=201)
    listed = await story.get(credentials)
    for answer in (created, listed):
        assert TOKEN not in str(answer)
    assert [(c["name"], c["kind"], c["host"]) for c in listed["items"]] == [
        ("forge", "token", forge.address)
    ]

    # the deployer hears of the credential through Kafka: until then a build still goes without
    deadline = time.monotonic() + CREDENTIAL_KNOWN_S
    done = await deploy(story)
    while done["status"] != "SUCCESS" and time.monotonic() < deadline:
        assert build_message(done).startswith("GIT_AUTH_FAILED: "), done
        done = await deploy(story)
    assert done["status"] == "SUCCESS", done
    assert forge.served
    url = (await story.service("web"))["urls"][0]
    async with httpx.AsyncClient(timeout=5) as http:
        assert (await http.get(url)).text == "<h1>private</h1>"

    seen: list[str] = []

    async def build_logged() -> bool:
        page = await story.get(f"/deployments/{done['id']}/logs")
        seen[:] = [line["text"] for line in page["items"]]
        return any(line["kind"] == "build" for line in page["items"])

    await eventually(build_logged, within_s=60)
    history = await story.get(f"/environments/{env}/deployments")
    for text in (*seen, str(history), str(refused), str(done)):
        assert TOKEN not in text

    gone = await api.delete(f"{credentials}/{created['id']}", headers=owner.auth)
    assert gone.status_code == 204, gone.text
    assert (await story.get(credentials))["items"] == []


async def test_a_commit_on_a_polled_repository_makes_the_environment_out_of_date(
    api: httpx.AsyncClient, forge: PrivateForge, tmp_path_factory: pytest.TempPathFactory, devstack
) -> None:
    work = web_repo(
        tmp_path_factory.mktemp("polled"), devstack.env["SLIPWAY_BASE_IMAGE"], "<h1>one</h1>"
    )
    bare = publish_bare(work, forge.root, "polled")
    owner, _, env = await new_environment(api)
    story = Story(api, owner, env)
    [org] = [o["id"] for o in (await story.get("/organizations"))["items"]]
    body = {"name": "forge", "kind": "token", "host": forge.address, "token": TOKEN}
    await story.post(f"/organizations/{org}/git-credentials", body, expect=201)
    await story.post(
        f"/environments/{env}/services",
        {
            "name": "web",
            "kind": "application",
            "git": {"url": forge.url("polled"), "branch": "main"},
            "ports": [{"port": 8080, "public": True}],
            "auto_deploy": False,  # stays out of date: what is asserted is the news
        },
        expect=201,
    )
    await ready(story, 1)
    deadline = time.monotonic() + CREDENTIAL_KNOWN_S
    done = await deploy(story)
    while done["status"] != "SUCCESS" and time.monotonic() < deadline:
        done = await deploy(story)  # until the deployer has heard of the credential
    assert done["status"] == "SUCCESS", done

    commit_page(work, "<h1>two</h1>")
    git(work, "push", "-q", str(bare), "main")
    pushed = git(work, "rev-parse", "HEAD")
    seen: dict[str, Any] = {}

    async def out_of_date() -> bool:
        seen.update(await story.status())
        return bool(seen["freshness"] == "OUT_OF_DATE" and seen["available_commit"] == pushed)

    # discovery (1 s), the scheduler hearing of the credential and the deployment, a poll (2 s)
    try:
        await eventually(out_of_date, within_s=60)
    except AssertionError:
        raise AssertionError(f"not out of date with {pushed} within 60 s: {seen}") from None
    assert seen["freshness_reason"] == "new commit available"
    [polled] = (await story.get(f"/organizations/{org}/git-polls"))["items"]
    assert (polled["branch"], polled["last_commit"], polled["failures"]) == ("main", pushed, 0)
    history = await story.get(f"/environments/{env}/deployments")
    assert [d["trigger"] for d in history["items"]].count("git_push") == 0
