"""Safe retries against the real PostgreSQL: a route made idempotent by ``slipway_libs.idempotency``
runs its effect once per key, whatever the timing of the duplicates."""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

import asyncpg
import httpx
import pytest
from fastapi import APIRouter, Body, Depends

from slipway_libs import db
from slipway_libs.actor import ACTOR_HEADER, Actor
from slipway_libs.errors import BusinessError
from slipway_libs.http import create_app
from slipway_libs.idempotency import Once
from slipway_libs.tenancy import tenant_scope

pytestmark = pytest.mark.integration


class Effects:
    """The route's effect (a row per run); a run may be held in its transaction."""

    def __init__(self) -> None:
        self.hold: asyncio.Event | None = None
        self.entered = asyncio.Event()
        self.fail_next = False


@pytest.fixture
async def service(
    database_factory,
) -> AsyncIterator[tuple[httpx.AsyncClient, asyncpg.Pool, Effects]]:
    dsn = await database_factory("idem")
    pool = await db.create_pool(dsn)
    async with pool.acquire() as conn:
        await conn.execute("CREATE TABLE effects (id uuid PRIMARY KEY, payload jsonb NOT NULL)")
    effects = Effects()
    router = APIRouter(dependencies=[Depends(tenant_scope(required=False))])
    tx = functools.partial(db.transaction, pool)

    @router.post("/things", status_code=201)
    async def create(body: Annotated[dict[str, Any], Body()], once: Once) -> dict[str, Any]:
        async def work(conn: asyncpg.Connection) -> dict[str, Any]:
            if effects.fail_next:
                effects.fail_next = False
                raise BusinessError("Not now.", code="NOT_NOW", status_code=409)
            thing = uuid.uuid4()
            await conn.execute("INSERT INTO effects VALUES ($1, $2)", thing, body)
            effects.entered.set()
            if effects.hold is not None:
                await effects.hold.wait()
            return {"id": thing, "payload": body}

        return await once.run(tx, work, headers=lambda out: {"ETag": f'"{out["id"]}"'})

    app = create_app(service="idem", routers=[router])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://idem") as client:
        yield client, pool, effects
    await pool.close()


def _actor(org: uuid.UUID, user: str) -> dict[str, str]:
    return {ACTOR_HEADER: Actor(type="user", id=user, organization_id=org).header()}


async def _runs(pool: asyncpg.Pool) -> int:
    return await pool.fetchval("SELECT count(*) FROM effects")


async def _until_a_request_waits_on_a_lock(pool: asyncpg.Pool) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if await pool.fetchval("SELECT count(*) FROM pg_locks WHERE NOT granted"):
            return
        await asyncio.sleep(0.02)
    pytest.fail("the duplicate request never waited for the first one within 10 s")


async def test_a_duplicate_in_flight_waits_for_the_first_and_replays_its_answer(service) -> None:
    client, pool, effects = service
    headers = {**_actor(uuid.uuid4(), "u1"), "Idempotency-Key": "k-1"}
    effects.hold = asyncio.Event()
    first = asyncio.create_task(client.post("/things", json={"n": 1}, headers=headers))
    await asyncio.wait_for(effects.entered.wait(), 10)
    second = asyncio.create_task(client.post("/things", json={"n": 1}, headers=headers))
    await _until_a_request_waits_on_a_lock(pool)
    effects.hold.set()
    one, two = await asyncio.gather(first, second)

    assert await _runs(pool) == 1
    assert (one.status_code, two.status_code) == (201, 201)
    assert two.json() == one.json()
    assert two.headers["etag"] == one.headers["etag"]
    assert two.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in one.headers


async def test_a_later_retry_replays_and_the_key_with_another_body_is_refused(service) -> None:
    client, pool, _ = service
    headers = {**_actor(uuid.uuid4(), "u1"), "Idempotency-Key": "k-2"}
    one = await client.post("/things", json={"n": 1, "m": 2}, headers=headers)
    again = await client.post(
        "/things",
        content=b'{"m": 2, "n": 1}',
        headers={**headers, "content-type": "application/json"},
    )
    other = await client.post("/things", json={"n": 2}, headers=headers)

    assert again.status_code == 201 and again.json() == one.json()
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert await _runs(pool) == 1


async def test_keys_belong_to_their_principal_and_organization(service) -> None:
    client, pool, _ = service
    org = uuid.uuid4()
    for headers in (_actor(org, "u1"), _actor(org, "u2"), _actor(uuid.uuid4(), "u1")):
        answer = await client.post(
            "/things", json={"n": 1}, headers={**headers, "Idempotency-Key": "shared"}
        )
        assert answer.status_code == 201
        assert "idempotent-replayed" not in answer.headers
    assert await _runs(pool) == 3


async def test_an_expired_key_runs_again(service) -> None:
    client, pool, _ = service
    headers = {**_actor(uuid.uuid4(), "u1"), "Idempotency-Key": "k-3"}
    one = await client.post("/things", json={"n": 1}, headers=headers)
    await pool.execute("UPDATE idempotency_keys SET expires_at = now() - interval '1 second'")
    again = await client.post("/things", json={"n": 1}, headers=headers)

    assert again.status_code == 201 and "idempotent-replayed" not in again.headers
    assert again.json()["id"] != one.json()["id"]
    assert await _runs(pool) == 2
    assert await pool.fetchval("SELECT count(*) FROM idempotency_keys") == 1


async def test_a_claim_sweeps_expired_keys_of_others(service) -> None:
    client, pool, _ = service
    for n in range(3):
        key = {"Idempotency-Key": f"old-{n}"}
        await client.post("/things", json={"n": n}, headers={**_actor(uuid.uuid4(), "u"), **key})
    await pool.execute("UPDATE idempotency_keys SET expires_at = now() - interval '1 second'")
    await client.post(
        "/things", json={}, headers={**_actor(uuid.uuid4(), "u"), "Idempotency-Key": "new"}
    )
    assert await pool.fetchval("SELECT array_agg(key) FROM idempotency_keys") == ["new"]


async def test_an_error_answer_keeps_no_key_and_the_retry_runs(service) -> None:
    client, pool, effects = service
    headers = {**_actor(uuid.uuid4(), "u1"), "Idempotency-Key": "k-4"}
    effects.fail_next = True
    refused = await client.post("/things", json={"n": 1}, headers=headers)
    retried = await client.post("/things", json={"n": 1}, headers=headers)

    assert refused.status_code == 409
    assert retried.status_code == 201 and "idempotent-replayed" not in retried.headers
    assert await _runs(pool) == 1


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9".encode()])
async def test_a_malformed_key_is_refused_before_anything_runs(service, key: str | bytes) -> None:
    client, pool, _ = service
    answer = await client.post(
        "/things", json={"n": 1}, headers={**_actor(uuid.uuid4(), "u"), "Idempotency-Key": key}
    )
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "INVALID_IDEMPOTENCY_KEY"
    assert await _runs(pool) == 0


async def test_a_duplicate_held_up_too_long_is_told_to_retry_and_runs_nothing(
    service, monkeypatch
) -> None:
    client, pool, effects = service
    monkeypatch.setattr("slipway_libs.idempotency._WAIT", "200ms")
    headers = {**_actor(uuid.uuid4(), "u1"), "Idempotency-Key": "k-5"}
    effects.hold = asyncio.Event()
    first = asyncio.create_task(client.post("/things", json={"n": 1}, headers=headers))
    await asyncio.wait_for(effects.entered.wait(), 10)
    second = await client.post("/things", json={"n": 1}, headers=headers)
    effects.hold.set()
    one = await first

    assert second.status_code == 409
    assert second.json()["error"]["code"] == "IDEMPOTENCY_KEY_IN_USE"
    assert second.headers["retry-after"] == "1"
    assert one.status_code == 201
    assert await _runs(pool) == 1
