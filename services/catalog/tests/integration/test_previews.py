"""Pull requests' preview environments in the catalog, against the real PostgreSQL (the
``catalog.previews`` consumer's handlers, each in one transaction as the inbox runs them): the
first ``PreviewRequested`` clones the blueprint under the scheduler's id (mode preview, named
pr-N) and points the named applications at the head, ``PreviewChanged`` last; the next one
moves the head; a deletion deletes the preview, and a request for it afterwards brings
nothing back; a blueprint that is not there, or a name taken, is done without a preview."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from slipway_catalog.usecases import previews
from slipway_catalog.usecases.deps import Deps
from slipway_contracts import new_event
from slipway_contracts.events.scheduler import PreviewDeletionRequested, PreviewRequested
from slipway_libs import db

pytestmark = pytest.mark.integration

HEAD_1, HEAD_2 = "1a" * 20, "2b" * 20


async def blueprint(api: httpx.AsyncClient) -> tuple[str, dict[str, Any], dict[str, Any]]:
    org = str(uuid.uuid4())
    cluster = (await api.get(f"/organizations/{org}/clusters")).json()["items"][0]["id"]
    project = (await api.post(f"/organizations/{org}/projects", json={"name": "Shop"})).json()
    env = (
        await api.post(
            f"/projects/{project['id']}/environments",
            json={"name": "staging", "mode": "staging", "cluster_id": cluster},
        )
    ).json()
    web = await api.post(
        f"/environments/{env['id']}/services",
        json={
            "name": "web",
            "kind": "application",
            "git": {"url": "https://github.com/acme/shop.git", "branch": "main"},
            "ports": [{"port": 8080, "public": True}],
        },
    )
    assert web.status_code == 201, web.text
    return org, env, web.json()


def requested(
    org: str, env: dict[str, Any], web: dict[str, Any], preview: uuid.UUID, commit: str
) -> PreviewRequested:
    return PreviewRequested(
        organization_id=uuid.UUID(org),
        environment_id=preview,
        blueprint_environment_id=uuid.UUID(env["id"]),
        service_ids=[uuid.UUID(web["id"])],
        name="pr-42",
        pull_request=42,
        branch="feature/x",
        commit=commit,
    )


async def handle(pool: asyncpg.Pool, deps: Deps, command: Any) -> list[dict[str, Any]]:
    """Run the consumer's handler in one transaction; the events it published, in order."""
    envelope = new_event(command, subject=str(command.environment_id), source="scheduler")
    async with db.transaction(pool) as conn:
        before = await conn.fetchval("SELECT coalesce(max(id), 0) FROM outbox")
        if isinstance(command, PreviewRequested):
            await previews.on_requested(conn, deps, envelope)
        else:
            await previews.on_deletion_requested(conn, deps, envelope)
        rows = await conn.fetch(
            "SELECT payload FROM outbox WHERE id > $1 AND topic = 'catalog.project.v1' ORDER BY id",
            before,
        )
    return [json.loads(r["payload"]) for r in rows]


async def test_a_preview_is_cloned_once_moved_to_each_head_then_deleted_for_good(
    api: httpx.AsyncClient, catalog_db, deps: Deps
) -> None:
    pool = catalog_db[1]
    org, env, web = await blueprint(api)
    preview = uuid.uuid4()

    events = await handle(pool, deps, requested(org, env, web, preview, HEAD_1))
    assert events[0]["type"] == "catalog.EnvironmentChanged"
    assert events[-1]["type"] == "catalog.PreviewChanged", [e["type"] for e in events]
    assert (events[-1]["data"]["environment_id"], events[-1]["data"]["commit"]) == (
        str(preview),
        HEAD_1,
    )
    created = (await api.get(f"/environments/{preview}")).json()
    assert (created["name"], created["mode"], created["cloned_from"]) == (
        "pr-42",
        "preview",
        env["id"],
    )
    [copy] = (await api.get(f"/environments/{preview}/services")).json()["items"]
    assert copy["id"] != web["id"]
    assert (copy["git"]["branch"], copy["git"]["commit"], copy["auto_deploy"]) == (
        "feature/x",
        HEAD_1,
        False,
    )
    source = (await api.get(f"/services/{web['id']}")).json()
    assert (source["git"]["branch"], source["git"]["commit"]) == ("main", None)

    moved = await handle(pool, deps, requested(org, env, web, preview, HEAD_2))
    assert [e["type"] for e in moved] == ["catalog.ServiceChanged", "catalog.PreviewChanged"]
    assert (await api.get(f"/services/{copy['id']}")).json()["git"]["commit"] == HEAD_2

    deletion = PreviewDeletionRequested(
        organization_id=uuid.UUID(org), environment_id=preview, reason="closed"
    )
    gone = await handle(pool, deps, deletion)
    assert gone[-1]["type"] == "catalog.EnvironmentChanged" and gone[-1]["data"]["deleted"]
    assert (await api.get(f"/environments/{preview}")).status_code == 404
    assert await handle(pool, deps, requested(org, env, web, preview, HEAD_2)) == []
    assert (await api.get(f"/environments/{preview}")).status_code == 404
    assert await handle(pool, deps, deletion) == []  # deleted already: nothing to do


async def test_no_blueprint_or_a_taken_name_makes_no_preview(
    api: httpx.AsyncClient, catalog_db, deps: Deps
) -> None:
    pool = catalog_db[1]
    org, env, web = await blueprint(api)
    elsewhere = requested(str(uuid.uuid4()), env, web, uuid.uuid4(), HEAD_1)
    assert await handle(pool, deps, elsewhere) == []  # another organization's blueprint
    # the blueprint's own name, in the same project
    taken = requested(org, env, web, uuid.uuid4(), HEAD_1).model_copy(update={"name": "staging"})
    assert await handle(pool, deps, taken) == []
    assert (await api.get(f"/environments/{taken.environment_id}")).status_code == 404
    regular = (await api.get(f"/environments/{env['id']}")).json()
    deletion = PreviewDeletionRequested(
        organization_id=uuid.UUID(org), environment_id=uuid.UUID(regular["id"]), reason="expired"
    )
    assert await handle(pool, deps, deletion) == []  # not a preview: left as it is
    assert (await api.get(f"/environments/{env['id']}")).status_code == 200
