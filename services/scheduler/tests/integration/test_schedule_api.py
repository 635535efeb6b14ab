"""The internal schedule route against the real PostgreSQL: the environment's next stop and
start and its jobs' next runs; another organization's caller sees nothing of them (row-level
tenant policies)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from services.scheduler.tests.integration.conftest import Catalog, HandClock
from slipway_libs import db
from slipway_libs.actor import ACTOR_HEADER, Actor
from slipway_libs.http import create_app
from slipway_scheduler.api.routes import build_router
from slipway_scheduler.usecases.projection import Projection

pytestmark = pytest.mark.integration


@pytest.fixture
async def api(pool) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(service="scheduler", routers=[build_router(pool, {})])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://scheduler/internal/v1"
    ) as client:
        yield client


def member_of(organization_id: uuid.UUID) -> dict[str, str]:
    """The actor header the gateway sends for a member of ``organization_id``."""
    actor = Actor(
        type="user",
        id=str(uuid.uuid4()),
        user_id=uuid.uuid4(),
        organization_role="viewer",
        organization_id=organization_id,
    )
    return {ACTOR_HEADER: actor.header()}


async def test_the_schedule_of_an_environment_for_its_organization_only(pool, api) -> None:
    clock, catalog, job = HandClock(), Catalog(), uuid.uuid4()
    projection = Projection(clock)
    events = [
        *catalog.deployed_job(job, "*/15 * * * *", "Europe/Paris"),
        catalog.rule(
            auto_stop=True,
            weekdays=["mon", "tue"],
            stop_time="19:00",
            timezone="Europe/Paris",
        ),
    ]
    async with db.transaction(pool) as conn:
        for event in events:
            await projection.apply(conn, event)

    path = f"/environments/{catalog.environment_id}/schedule"
    response = await api.get(path, headers=member_of(catalog.organization_id))
    assert response.status_code == 200, response.text
    schedule = response.json()
    assert schedule["auto_stop"] is True and schedule["auto_start"] is False
    assert schedule["timezone"] == "Europe/Paris" and schedule["weekdays"] == ["mon", "tue"]
    assert schedule["next_stop_at"] == "2026-01-05T18:00:00+00:00"  # 19:00 in Paris, Monday
    assert schedule["next_start_at"] is None
    [entry] = schedule["jobs"]
    assert entry["service_id"] == str(job) and entry["deployed"] is True
    assert entry["next_run_at"] == "2026-01-05T09:15:00+00:00"

    stranger = await api.get(path, headers=member_of(uuid.uuid4()))
    assert stranger.status_code == 200, stranger.text
    assert stranger.json()["jobs"] == [] and stranger.json()["next_stop_at"] is None

    bad = await api.get("/environments/not-a-uuid/schedule", headers=member_of(uuid.uuid4()))
    assert bad.status_code == 422
