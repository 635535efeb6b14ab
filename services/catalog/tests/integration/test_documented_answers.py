"""Every route the catalog documents (``api.answers.ANSWERS``) answers, on real rows, only fields
its document names, nested ones included: a client generated from the public document (or the
CLI's typed client, which mirrors it) reads nothing the document does not promise. A route whose
real answer the document did not describe either failed (a required field absent: the model
refused the route's own answer, a 500 — a good cluster check, which has no message) or answered
fields no document named (a resolved variable's source)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from services.catalog.tests.documented import undocumented
from services.catalog.tests.integration.test_catalog_api import APP, org_with_env
from slipway_catalog.api.answers import ANSWERS

pytestmark = pytest.mark.integration

I = "/internal/v1"  # noqa: E741


class Answers:
    """Asks the catalog, and keeps each answer under the ``ANSWERS`` key of its route."""

    def __init__(self, api: httpx.AsyncClient) -> None:
        self.api = api
        self.seen: dict[str, list[Any]] = {}

    async def __call__(
        self,
        route: str,
        body: dict[str, Any] | None = None,
        /,
        *,
        params: dict[str, str] | None = None,
        **ids: str,
    ) -> Any:
        """``route``: ``"METHOD /path/{id}"`` under /internal/v1, its ids given by name."""
        method, path = route.split(" ", 1)
        answer = await self.api.request(method, path.format(**ids), json=body, params=params)
        assert answer.status_code < 300, (route, answer.text)
        self.seen.setdefault(f"{method} {I}{path}", []).append(answer.json())
        return answer.json()


async def test_every_answer_names_only_documented_fields(api: httpx.AsyncClient) -> None:
    ask = Answers(api)
    org, project, env, local = await org_with_env(api)
    await _clusters(ask, org, local)
    await _projects_and_environments(ask, org, project, env, local)
    await _services_and_variables(ask, env)
    await _git_credentials(ask, org)

    assert set(ask.seen) == set(ANSWERS), "every documented route is asked"
    found = {
        key: paths
        for key, answers in ask.seen.items()
        if (paths := sorted({p for a in answers for p in undocumented(ANSWERS[key], a)}))
    }
    assert found == {}, f"fields answered that the document does not name: {found}"


async def _clusters(ask: Answers, org: str, local: str) -> None:
    await ask("GET /organizations/{org_id}/clusters", org_id=org)
    kube = {"name": "prod", "api_url": "https://k8s.example.invalid:6443", "token": "t0ken"}
    made = await ask("POST /organizations/{org_id}/clusters", kube, org_id=org)
    await ask("GET /clusters/{cluster_id}", cluster_id=made["id"])
    await ask("PATCH /clusters/{cluster_id}", {"name": "prod-1"}, cluster_id=made["id"])
    for cluster in (local, made["id"]):  # ok with a message; not reached: a reason
        await ask("POST /clusters/{cluster_id}/check", cluster_id=cluster)


async def _projects_and_environments(
    ask: Answers, org: str, project: str, env: str, local: str
) -> None:
    await ask("POST /organizations/{org_id}/projects", {"name": "Two"}, org_id=org)
    await ask("GET /organizations/{org_id}/projects", org_id=org)
    await ask("GET /projects/{project_id}", project_id=project)
    await ask("PATCH /projects/{project_id}", {"description": "x"}, project_id=project)
    other = {"name": f"e-{uuid.uuid4().hex[:6]}", "mode": "development", "cluster_id": local}
    await ask("POST /projects/{project_id}/environments", other, project_id=project)
    await ask("GET /projects/{project_id}/environments", project_id=project)
    await ask("GET /environments/{env_id}", env_id=env)
    await ask("PATCH /environments/{env_id}", {"name": "renamed"}, env_id=env)
    await ask("POST /environments/{env_id}/clone", {"name": "copy"}, env_id=env)
    stage = await ask("POST /environments/{env_id}/stages", {"name": "first"}, env_id=env)
    await ask("PATCH /stages/{stage_id}", {"name": "early"}, stage_id=stage["id"])
    stages = await ask("GET /environments/{env_id}/stages", env_id=env)
    order = {"stage_ids": [s["id"] for s in reversed(stages["items"])]}
    await ask("PUT /environments/{env_id}/stages/order", order, env_id=env)
    rule = {
        "auto_stop": True,
        "timezone": "Europe/Paris",
        "weekdays": ["mon"],
        "stop_time": "19:00",
    }
    await ask("PUT /environments/{env_id}/deployment-rule", rule, env_id=env)
    await ask("GET /environments/{env_id}/deployment-rule", env_id=env)


async def _services_and_variables(ask: Answers, env: str) -> None:
    web = (await ask("POST /environments/{env_id}/services", APP, env_id=env))["id"]
    await ask("GET /environments/{env_id}/services", env_id=env)
    await ask("GET /services/{service_id}", service_id=web)
    await ask("PATCH /services/{service_id}", {"min_instances": 2}, service_id=web)
    stage = (await ask("GET /environments/{env_id}/stages", env_id=env))["items"][0]["id"]
    await ask("PUT /services/{service_id}/stage", {"stage_id": stage}, service_id=web)
    for key, is_secret in (("GREETING", False), ("API_KEY", True)):
        variable = {"scope": "environment", "parent_id": env, "key": key, "value": "v"}
        made = await ask("POST /variables", {**variable, "is_secret": is_secret})
        await ask("GET /variables/{variable_id}", variable_id=made["id"])
        await ask("PATCH /variables/{variable_id}", {"value": "w"}, variable_id=made["id"])
    await ask("GET /variables", params={"scope": "environment", "parent_id": env})
    await ask("GET /services/{service_id}/variables/resolved", service_id=web)


async def _git_credentials(ask: Answers, org: str) -> None:
    base = "/organizations/{org_id}/git-credentials"
    token = {"name": "forge", "kind": "token", "host": "git.example.com", "token": "forge-t0ken"}
    made = await ask(f"POST {base}", token, org_id=org)
    await ask(f"GET {base}", org_id=org)
    await ask(f"GET {base}/{{credential_id}}", org_id=org, credential_id=made["id"])
