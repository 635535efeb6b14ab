"""Each catalog write answers its project's revision, and the events carry it (the causal token of
read-your-writes across services: a reader that has applied the event carrying revision *n* has
every change the write answering *n* made)."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest

from slipway_libs.changes import REVISION_HEADER, parse_revisions

pytestmark = pytest.mark.integration


def revision(response: httpx.Response, project: str) -> int:
    assert response.status_code < 400, response.text
    return parse_revisions(response.headers.get(REVISION_HEADER))[uuid.UUID(project)]


async def test_every_write_in_a_project_answers_its_next_revision_and_the_events_carry_it(
    api, catalog_db
) -> None:
    org = str(uuid.uuid4())
    cluster = (await api.get(f"/organizations/{org}/clusters")).json()["items"][0]["id"]
    created = await api.post(f"/organizations/{org}/projects", json={"name": "Shop"})
    project = created.json()["id"]
    env = await api.post(
        f"/projects/{project}/environments",
        json={"name": "staging", "mode": "staging", "cluster_id": cluster},
    )
    stage = await api.post(f"/environments/{env.json()['id']}/stages", json={"name": "first"})
    job = {"name": "job", "kind": "cronjob", "schedule": "0 3 * * *", "command": ["true"]}
    job["image"] = {"registry": "docker.io", "name": "library/busybox", "tag": "1"}
    service = await api.post(f"/environments/{env.json()['id']}/services", json=job)
    variable = await api.post(
        "/variables",
        json={"scope": "service", "parent_id": service.json()["id"], "key": "A", "value": "1"},
    )
    answered = [revision(r, project) for r in (created, env, stage, service, variable)]
    assert answered == sorted(answered) and len(set(answered)) == len(answered), answered
    # a read answers none; neither does a write to another project
    read = await api.get(f"/projects/{project}")
    assert REVISION_HEADER not in read.headers
    other = await api.post(f"/organizations/{org}/projects", json={"name": "Other"})
    assert list(parse_revisions(other.headers[REVISION_HEADER])) == [uuid.UUID(other.json()["id"])]

    # every event of the project carries a revision, in the order of the outbox, the last one
    # the revision the last write answered
    async with catalog_db[1].acquire() as conn:
        rows = await conn.fetch(
            "SELECT payload FROM outbox WHERE topic = 'catalog.project.v1' AND key = $1"
            " ORDER BY id",
            project,
        )
    carried = [json.loads(r["payload"])["data"]["revision"] for r in rows]
    assert carried == sorted(carried) and len(set(carried)) == len(carried), carried
    assert carried[-1] == answered[-1]


async def test_concurrent_writes_in_one_project_take_distinct_revisions_in_commit_order(
    api, catalog_db
) -> None:
    org = str(uuid.uuid4())
    project = (await api.post(f"/organizations/{org}/projects", json={"name": "Shop"})).json()
    writes = await asyncio.gather(
        *(
            api.post(
                "/variables",
                json={"scope": "project", "parent_id": project["id"], "key": f"K{i}", "value": "v"},
            )
            for i in range(10)
        )
    )
    answered = sorted(revision(r, project["id"]) for r in writes)
    assert len(set(answered)) == 10
    async with catalog_db[1].acquire() as conn:
        rows = await conn.fetch(
            "SELECT payload FROM outbox WHERE topic = 'catalog.project.v1' AND key = $1"
            " ORDER BY id",
            project["id"],
        )
    carried = [json.loads(r["payload"])["data"]["revision"] for r in rows]
    assert carried == sorted(carried), carried  # the outbox's order is the revisions' order
    assert set(answered) <= set(carried)
