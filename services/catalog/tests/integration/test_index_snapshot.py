"""The index snapshot (what the gateway loads before following the catalog's topics): every live
entity as the event its last change published, read from the typed repositories."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import pytest

pytestmark = pytest.mark.integration

APP = {
    "name": "web",
    "kind": "application",
    "git": {"url": "https://example.com/acme/web.git", "branch": "main"},
    "ports": [{"port": 8080, "protocol": "http", "public": True}],
}
DB = {"name": "db", "kind": "database", "engine": "postgresql"}  # the local cluster's version
# which field of each event names its entity
ID_FIELD = {
    "catalog.ClusterChanged": "cluster_id",
    "catalog.ProjectChanged": "project_id",
    "catalog.EnvironmentChanged": "environment_id",
    "catalog.ServiceChanged": "service_id",
    "catalog.StageChanged": "stage_id",
    "catalog.VariableChanged": "variable_id",
}


def _by_type(changes: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    found: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in ID_FIELD}
    for change in changes:
        data = change["data"]
        found[change["type"]][data[ID_FIELD[change["type"]]]] = data
    return found


async def test_every_live_entity_is_in_the_snapshot_as_its_last_state(api, deps) -> None:
    org = str(uuid.uuid4())
    cluster = (await api.get(f"/organizations/{org}/clusters")).json()["items"][0]
    project = (await api.post(f"/organizations/{org}/projects", json={"name": "Shop"})).json()
    env = (
        await api.post(
            f"/projects/{project['id']}/environments",
            json={"name": "staging", "mode": "staging", "cluster_id": cluster["id"]},
        )
    ).json()
    web = (await api.post(f"/environments/{env['id']}/services", json=APP)).json()
    gone = (await api.post(f"/environments/{env['id']}/services", json=DB)).json()
    assert (await api.delete(f"/services/{gone['id']}")).status_code == 204
    renamed = await api.patch(f"/projects/{project['id']}", json={"description": "the shop"})
    assert renamed.status_code == 200, renamed.text
    secret = await api.post(
        "/variables",
        json={
            "scope": "environment",
            "parent_id": env["id"],
            "key": "API_KEY",
            "value": "hunter2-very-secret",
            "is_secret": True,
        },
    )
    assert secret.status_code == 201, secret.text
    stages = (await api.get(f"/environments/{env['id']}/stages")).json()["items"]

    answer = await api.get("/index-snapshot")
    assert answer.status_code == 200, answer.text
    found = _by_type(answer.json()["changes"])

    assert found["catalog.ClusterChanged"][cluster["id"]]["kind"] == "local"
    shop = found["catalog.ProjectChanged"][project["id"]]
    assert shop["description"] == "the shop"
    assert shop["version"] == renamed.json()["resource_version"]
    staging = found["catalog.EnvironmentChanged"][env["id"]]
    assert (staging["mode"], staging["cluster_id"]) == ("staging", cluster["id"])
    services = found["catalog.ServiceChanged"]
    assert services[web["id"]]["spec"]["git"]["branch"] == "main"
    assert gone["id"] not in services  # deleted: not live
    assert {s["id"] for s in stages} <= set(found["catalog.StageChanged"])
    # a secret travels sealed with the transport key, never in clear
    variable = found["catalog.VariableChanged"][secret.json()["id"]]
    assert variable["value"] is None and variable["is_secret"]
    sealed = base64.b64decode(variable["value_sealed"])
    opened = deps.transport.open(sealed, aad=uuid.UUID(secret.json()["id"]).bytes)
    assert opened == b"hunter2-very-secret"
