"""A finding of the independent permission expectation (issue 10, item 11): cloning an
environment needs to read it.

A clone copies the source's services, stages, rule and variables, secrets included (README). The
gateway decided a clone only on the new environment's mode and cluster, so a custom role holding
``manager`` on development and ``no_access`` on production could clone a production environment
into development and so obtain everything production is configured with. Now it is refused
(403), while cloning what the role may read still works.
"""

from __future__ import annotations

import httpx
import pytest

from slipway_libs.testing.public_api import add_member, create_org, eventually, sign_up

pytestmark = pytest.mark.integration


async def _made(api: httpx.AsyncClient, path: str, body: object, auth: dict[str, str]) -> str:
    made = await api.post(path, json=body, headers=auth)
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


async def test_a_clone_needs_to_read_the_environment_it_copies(api: httpx.AsyncClient) -> None:
    owner = await sign_up(api, "Owner")
    org = await create_org(api, owner)
    clusters = (await api.get(f"/organizations/{org}/clusters", headers=owner.auth)).json()
    local = next(c["id"] for c in clusters["items"] if c["kind"] == "local")
    project = await _made(api, f"/organizations/{org}/projects", {"name": "Shop"}, owner.auth)
    envs = f"/projects/{project}/environments"
    production = await _made(
        api, envs, {"name": "prod", "mode": "production", "cluster_id": local}, owner.auth
    )
    development = await _made(
        api, envs, {"name": "dev", "mode": "development", "cluster_id": local}, owner.auth
    )
    secret = {"scope": "environment", "parent_id": production, "key": "DB_PASSWORD"}
    await _made(api, "/variables", {**secret, "value": "s3cret", "is_secret": True}, owner.auth)
    grants = {
        "name": "Dev manager",
        "projects": [{"project_id": project, "environments": {"development": "manager"}}],
        "clusters": [{"cluster_id": local, "permission": "env_creator"}],
    }
    role = await _made(api, f"/organizations/{org}/roles", grants, owner.auth)
    developer = await sign_up(api, "Dev")
    await add_member(api, org, owner, developer, role)

    async def can_read_development() -> bool:
        read = await api.get(f"/environments/{development}", headers=developer.auth)
        return read.status_code == 200

    await eventually(can_read_development)
    into_development = {"mode": "development", "cluster_id": local}

    refused = await api.post(
        f"/environments/{production}/clone",
        json={**into_development, "name": "prod-copy"},
        headers=developer.auth,
    )
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "FORBIDDEN")
    listed = (await api.get(envs, headers=owner.auth)).json()["items"]
    assert "prod-copy" not in {env["name"] for env in listed}

    allowed = await api.post(
        f"/environments/{development}/clone",
        json={**into_development, "name": "dev-copy"},
        headers=developer.auth,
    )
    assert allowed.status_code == 201, allowed.text
