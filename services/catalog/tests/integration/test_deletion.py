"""Deleting a project takes everything under it, children before their parent, each deletion
published; the project and its environments are audited (``usecases/deletion.py``)."""

from __future__ import annotations

import json
import uuid

import pytest

pytestmark = pytest.mark.integration

JOB = {
    "name": "job",
    "kind": "cronjob",
    "schedule": "0 3 * * *",
    "command": ["true"],
    "image": {"registry": "docker.io", "name": "library/busybox", "tag": "1"},
}


async def test_deleting_a_project_deletes_and_publishes_everything_under_it_children_first(
    api, catalog_db
) -> None:
    org = str(uuid.uuid4())
    cluster = (await api.get(f"/organizations/{org}/clusters")).json()["items"][0]["id"]
    project = (await api.post(f"/organizations/{org}/projects", json={"name": "Shop"})).json()
    env = (
        await api.post(
            f"/projects/{project['id']}/environments",
            json={"name": "staging", "mode": "staging", "cluster_id": cluster},
        )
    ).json()
    service = (await api.post(f"/environments/{env['id']}/services", json=JOB)).json()
    for scope, parent in (("project", project), ("environment", env), ("service", service)):
        created = await api.post(
            "/variables",
            json={"scope": scope, "parent_id": parent["id"], "key": f"K_{scope}", "value": "v"},
        )
        assert created.status_code == 201, created.text
    async with catalog_db[1].acquire() as conn:
        before = await conn.fetchval("SELECT max(id) FROM outbox")

    deleted = await api.delete(f"/projects/{project['id']}")
    assert deleted.status_code == 204, deleted.text

    async with catalog_db[1].acquire() as conn:
        rows = await conn.fetch(
            "SELECT topic, payload FROM outbox WHERE id > $1 ORDER BY id", before
        )
    events = [json.loads(r["payload"]) for r in rows]
    published = [e for r, e in zip(rows, events, strict=True) if r["topic"] == "catalog.project.v1"]
    catalog = [
        (e["type"].removeprefix("catalog.").removesuffix("Changed"), e["data"].get("key"))
        for e in published
    ]
    assert [kind for kind, _ in catalog] == [
        "Variable",  # the service's
        "Service",
        "Variable",  # the environment's
        *["Stage"] * (len(catalog) - 6),  # the environment's default stages
        "Environment",
        "Variable",  # the project's
        "Project",
    ], catalog
    assert [key for kind, key in catalog if kind == "Variable"] == [
        "K_service",
        "K_environment",
        "K_project",
    ]
    assert all(e["data"]["deleted"] for e in published)
    audited = [
        (e["data"]["action"], e["data"]["target_type"])
        for e in events
        if "target_type" in e.get("data", {})
    ]
    # the environment is audited as it goes, what goes with it (service, variables) is not
    assert audited == [("DELETE", "ENVIRONMENT"), ("DELETE", "PROJECT")], audited
    for path in (f"/projects/{project['id']}", f"/environments/{env['id']}"):
        assert (await api.get(path)).status_code == 404
    assert (await api.get(f"/services/{service['id']}")).status_code == 404
