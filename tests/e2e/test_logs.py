"""Logs through the public API (issue 12): one deployment of an application built from git, its
build lines and deploy lines, then the running service's live output, read back in cursor order;
readers of the environment may read them, another organization gets 404."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from slipway_libs.testing.platform import Platform
from slipway_libs.testing.public_api import User, add_member, create_org, eventually, sign_up
from tests.e2e.deploying import Story, git, ready

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


@pytest.fixture(scope="module")
async def platform(platform_factory, repos, devstack) -> Platform:
    if "SLIPWAY_BASE_IMAGE" not in devstack.env:
        pytest.fail("the devstack has no registry/base image: run `make infra-up`")
    return await platform_factory(
        ["identity", "catalog", "builder", "deployer", "logs", "gateway"],
        extra_env={"SLIPWAY_GIT_LOCAL_ROOTS": str(repos)},
    )


def _talker_repo(root: Path, base: str) -> Path:
    """A busybox web server whose build says something, and which says something on stdout and
    on stderr when it starts."""
    repo = root / "talker"
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "Dockerfile").write_text(
        f"FROM {base}\n"
        "RUN echo building the talker\n"
        'CMD ["sh", "-c", "echo hello from talker && echo something odd >&2'
        ' && mkdir -p /www && echo up > /www/index.html && exec httpd -f -p $PORT -h /www"]\n'
    )
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "talker")
    return repo


async def test_build_and_deploy_lines_then_live_output_through_the_public_api(
    api, repos, devstack
) -> None:
    owner, org, env = await _environment(api)
    story = Story(api, owner, env)
    repo = _talker_repo(repos, devstack.env["SLIPWAY_BASE_IMAGE"])
    service = await story.post(
        f"/environments/{env}/services",
        {
            "name": "talker",
            "kind": "application",
            "git": {"url": str(repo), "branch": "main"},
            "ports": [{"port": 8080}],
        },
        expect=201,
    )
    await ready(story, 1)
    deployment = (await story.post(f"/environments/{env}/deploy"))["request_id"]
    done = await story.settle(deployment)
    assert done["status"] == "SUCCESS", done

    deployment_logs = f"/deployments/{deployment}/logs"
    service_logs = f"/services/{service['id']}/logs"
    page: dict[str, Any] = {}

    async def lines_of(path: str, wanted: set[str], **params: object) -> bool:
        nonlocal page
        response = await api.get(path, params=params, headers=owner.auth)
        assert response.status_code == 200, response.text
        page = response.json()
        return wanted <= {line["text"] for line in page["items"]}

    # the deployment's lines: its build's output and what the deployer did, in cursor order
    async def has_build_and_deploy_lines() -> bool:
        await lines_of(deployment_logs, set())
        kinds = {line["kind"] for line in page["items"]}
        texts = [line["text"] for line in page["items"]]
        return kinds == {"build", "deploy"} and any("building the talker" in t for t in texts)

    await eventually(has_build_and_deploy_lines, within_s=60)
    items = page["items"]
    cursors = [line["cursor"] for line in items]
    assert cursors == sorted(set(cursors)) and cursors[0] == 1
    assert page["head_cursor"] >= cursors[-1]
    assert all(line["stream"] == "system" for line in items if line["kind"] == "deploy")
    build = [line for line in items if line["kind"] == "build"]
    assert all(line["build_id"] for line in build)
    # the build ran before the deployer's last word on the deployment
    last_deploy = max(line["cursor"] for line in items if line["kind"] == "deploy")
    said = next(line for line in build if "building the talker" in line["text"])
    assert said["cursor"] < last_deploy

    # what the running service printed, stdout and stderr apart
    await eventually(
        lambda: lines_of(service_logs, {"hello from talker", "something odd"}), within_s=60
    )
    streams = {line["text"]: (line["stream"], line["kind"]) for line in page["items"]}
    assert streams["hello from talker"] == ("stdout", "live")
    assert streams["something odd"] == ("stderr", "live")
    assert await lines_of(service_logs, {"something odd"}, stream="stderr")
    assert [line["text"] for line in page["items"]] == ["something odd"]
    assert await lines_of(service_logs, {"hello from talker"}, q="HELLO", tail=1)
    assert len(page["items"]) == 1

    # a viewer of the organization reads them; another organization's member does not
    viewer = await sign_up(api, "Vic")
    await add_member(api, org, owner, viewer, "viewer")
    for path in (deployment_logs, service_logs):
        response = await api.get(path, headers=viewer.auth)
        assert response.status_code == 200 and response.json()["items"], response.text
    stranger = await sign_up(api, "Eve")
    await create_org(api, stranger, "Elsewhere")
    for path, code in (
        (deployment_logs, "DEPLOYMENT_NOT_FOUND"),
        (service_logs, "SERVICE_NOT_FOUND"),
    ):
        response = await api.get(path, headers=stranger.auth)
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == code

    # bad parameters answer the logs service's 422 and its stable code
    response = await api.get(service_logs, params={"tail": 3, "after": 1}, headers=owner.auth)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "LOGS_TAIL_WITH_CURSOR"

    await story.post(f"/environments/{env}/stop")


async def test_the_openapi_document_lists_the_log_routes(api) -> None:
    document = (await api.get("/openapi.json")).json()
    paths = document["paths"]
    for path in ("/api/v1/deployments/{deployment}/logs", "/api/v1/services/{service}/logs"):
        content = paths[path]["get"]["responses"]["200"]["content"]
        assert content["application/json"]["schema"] == {"$ref": "#/components/schemas/LogPage"}
        assert "text/event-stream" in content
    assert {"LogLine", "LogPage", "LogRetention"} <= set(document["components"]["schemas"])


def _shape(model: type[BaseModel]) -> dict[str, Any]:
    """A model's JSON schema without its prose (titles, descriptions)."""

    def bare(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: bare(v) for k, v in node.items() if k not in ("title", "description", "$defs")
            }
        if isinstance(node, list):
            return [bare(v) for v in node]
        return node

    shape: dict[str, Any] = bare(model.model_json_schema())
    return shape


def test_the_gateways_log_schemas_are_the_logs_services_own() -> None:
    """The gateway documents the logs answers without importing the logs service: what it
    writes must stay what the logs service answers and checks."""
    from slipway_gateway.api import log_docs
    from slipway_logs.api import follow, schemas
    from slipway_logs.domain import paging

    pairs = [
        (log_docs.LogLine, schemas.LineOut),
        (log_docs.LogPage, schemas.PageOut),
        (log_docs.LogRetention, schemas.RetentionOut),
        (log_docs.LogRetentionUpdate, schemas.RetentionIn),
    ]
    for documented, answered in pairs:
        mine, theirs = _shape(documented), _shape(answered)
        if documented is log_docs.LogPage:  # its items' $ref names the documented model
            mine["properties"]["items"] = theirs["properties"]["items"]
        assert mine == theirs, documented.__name__
    assert (log_docs.MAX_LIMIT, log_docs.DEFAULT_LIMIT, log_docs.MAX_QUERY_CHARS) == (
        paging.MAX_LIMIT,
        paging.DEFAULT_LIMIT,
        paging.MAX_QUERY_CHARS,
    )
    assert log_docs.FOLLOW_DEFAULT_TAIL == follow.DEFAULT_TAIL


async def _environment(api: httpx.AsyncClient) -> tuple[User, str, str]:
    """A new owner, their organization and a staging environment on the local cluster."""
    owner = await sign_up(api, "Dev")
    org = await create_org(api, owner)
    clusters = (await api.get(f"/organizations/{org}/clusters", headers=owner.auth)).json()
    project = await api.post(
        f"/organizations/{org}/projects", json={"name": "Logs"}, headers=owner.auth
    )
    env = await api.post(
        f"/projects/{project.json()['id']}/environments",
        headers=owner.auth,
        json={"name": "staging", "mode": "staging", "cluster_id": clusters["items"][0]["id"]},
    )
    assert env.status_code == 201, env.text
    return owner, org, env.json()["id"]
