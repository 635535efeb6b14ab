"""Safe retries and concurrent edits through the public API (issue 15, item 3): the real gateway,
identity, catalog, builder and deployer as processes, the real broker and database.

A client that timed out sends its request again with the same ``Idempotency-Key``: it gets the
first answer (``Idempotent-Replayed: true``) and nothing happens twice. A write naming a stale
version in ``If-Match`` answers 412 and leaves the newer change in place."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from slipway_libs.testing.public_api import create_org, sign_up
from tests.e2e.deploying import Story, container, new_environment, ready

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

REPLAYED = "idempotent-replayed"


async def test_a_deploy_sent_twice_with_one_key_queues_one_deployment(api, devstack) -> None:
    owner, _, env = await new_environment(api)
    story = Story(api, owner, env)
    await story.post(
        f"/environments/{env}/services", container(devstack.env["SLIPWAY_BASE_IMAGE"]), expect=201
    )
    await ready(story, 1)
    keyed = {**owner.auth, "Idempotency-Key": f"deploy-{uuid.uuid4()}"}

    # the retry races the first attempt (a client that gave up on a 504 and sent it again)
    one, two = await asyncio.gather(
        *(api.post(f"/environments/{env}/deploy", headers=keyed) for _ in range(2))
    )
    assert (one.status_code, two.status_code) == (202, 202), (one.text, two.text)
    assert one.json() == two.json()
    assert sorted(r.headers.get(REPLAYED, "-") for r in (one, two)) == ["-", "true"]
    first = one.json()
    assert not first["merged"]
    done = await story.settle(first["request_id"])
    assert done["status"] == "SUCCESS", done

    # a retry after the deployment ended: still the first answer, still nothing queued
    later = await api.post(f"/environments/{env}/deploy", headers=keyed)
    assert later.status_code == 202 and later.json() == first
    assert later.headers[REPLAYED] == "true"
    history = await story.get(f"/environments/{env}/deployments")
    assert [d["id"] for d in history["items"]] == [first["request_id"]]

    # the key names that request: another action with it is refused, and queues nothing
    other = await api.post(f"/environments/{env}/stop", headers=keyed)
    assert other.status_code == 422, other.text
    assert other.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    # the discriminating case: the same deploy under a new key is a new deployment
    fresh = {**owner.auth, "Idempotency-Key": f"deploy-{uuid.uuid4()}"}
    again = await api.post(f"/environments/{env}/deploy", headers=fresh)
    assert again.status_code == 202 and REPLAYED not in again.headers
    assert again.json()["request_id"] != first["request_id"]
    assert (await story.settle(again.json()["request_id"]))["status"] == "SUCCESS"
    history = await story.get(f"/environments/{env}/deployments")
    assert len(history["items"]) == 2


async def test_a_create_sent_twice_with_one_key_creates_one(api: httpx.AsyncClient) -> None:
    owner = await sign_up(api, "Retry")
    orgs = [
        await api.post("/organizations", json={"name": "Acme"}, headers={**owner.auth, **key})
        for key in ({"Idempotency-Key": "create-org-1"},) * 2
    ]
    assert [o.status_code for o in orgs] == [201, 201] and orgs[1].json() == orgs[0].json()
    assert orgs[1].headers[REPLAYED] == "true"
    org = orgs[0].json()["id"]
    mine = (await api.get("/organizations", headers=owner.auth)).json()["items"]
    assert [o["id"] for o in mine] == [org]
    keyed = {**owner.auth, "Idempotency-Key": "create-project-1"}
    path = f"/organizations/{org}/projects"

    one = await api.post(path, json={"name": "Shop", "description": "d"}, headers=keyed)
    # the same JSON, keys in another order: the same request
    two = await api.post(
        path,
        content=b'{"description": "d", "name": "Shop"}',
        headers={**keyed, "content-type": "application/json"},
    )
    assert (one.status_code, two.status_code) == (201, 201), (one.text, two.text)
    assert two.json() == one.json() and two.headers[REPLAYED] == "true"
    assert two.headers["etag"] == one.headers["etag"] == f'"{one.json()["resource_version"]}"'
    listed = (await api.get(path, headers=owner.auth)).json()["items"]
    assert [p["id"] for p in listed] == [one.json()["id"]]

    other = await api.post(path, json={"name": "Other"}, headers=keyed)
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    malformed = await api.post(
        path, json={"name": "Other"}, headers={**owner.auth, "Idempotency-Key": "x" * 256}
    )
    assert malformed.status_code == 422
    assert malformed.json()["error"]["code"] == "INVALID_IDEMPOTENCY_KEY"
    # a key is the principal's own: another user's same key is another request
    member = await sign_up(api, "Other")
    theirs = await create_org(api, member)
    created = await api.post(
        f"/organizations/{theirs}/projects",
        json={"name": "Shop", "description": "d"},
        headers={**member.auth, "Idempotency-Key": "create-project-1"},
    )
    assert created.status_code == 201 and REPLAYED not in created.headers
    assert len((await api.get(path, headers=owner.auth)).json()["items"]) == 1


async def test_a_stale_if_match_answers_412_and_the_newer_value_survives(
    api: httpx.AsyncClient,
) -> None:
    owner = await sign_up(api, "Editor")
    org = await create_org(api, owner)
    created = await api.post(
        f"/organizations/{org}/projects", json={"name": "Shop"}, headers=owner.auth
    )
    project = f"/projects/{created.json()['id']}"
    read = await api.get(project, headers=owner.auth)
    seen = read.headers["etag"]  # both editors read this version
    assert seen == f'"{read.json()["resource_version"]}"'

    first = await api.patch(
        project, json={"name": "Store"}, headers={**owner.auth, "If-Match": seen}
    )
    assert first.status_code == 200, first.text
    newer = first.headers["etag"]
    assert newer != seen and first.json()["name"] == "Store"

    stale = await api.patch(
        project, json={"name": "Market"}, headers={**owner.auth, "If-Match": seen}
    )
    assert stale.status_code == 412, stale.text
    error = stale.json()["error"]
    assert error["code"] == "PRECONDITION_FAILED"
    assert error["details"]["etag"] == newer == stale.headers["etag"]
    after = await api.get(project, headers=owner.auth)
    assert after.json()["name"] == "Store" and after.headers["etag"] == newer

    # read again, decide, write with the current version: accepted
    retried = await api.patch(
        project, json={"name": "Market"}, headers={**owner.auth, "If-Match": newer}
    )
    assert retried.status_code == 200 and retried.json()["name"] == "Market"
