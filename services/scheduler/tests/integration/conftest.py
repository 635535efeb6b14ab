from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from slipway_contracts import Envelope, new_event
from slipway_contracts.events import catalog as ev
from slipway_contracts.events import deployer as deployer_events
from slipway_libs import db
from slipway_scheduler.bootstrap import DEFINITION


@dataclass
class HandClock:
    """The tests' clock: time moves when the test says so."""

    at: datetime = field(default_factory=lambda: datetime(2026, 1, 5, 9, 0, 30, tzinfo=UTC))

    def now(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


@pytest.fixture
async def scheduler_db(database_factory) -> AsyncIterator[tuple[str, asyncpg.Pool]]:
    dsn = await database_factory("scheduler", DEFINITION.migrations)
    pool = await db.create_pool(dsn, max_size=6)
    yield dsn, pool
    await pool.close()


@pytest.fixture
async def pool(scheduler_db) -> asyncpg.Pool:
    return scheduler_db[1]


@pytest.fixture
def clock() -> HandClock:
    return HandClock()


@dataclass
class Catalog:
    """Catalog events as the catalog publishes them (full state, a version per change)."""

    organization_id: uuid.UUID = field(default_factory=uuid.uuid4)
    project_id: uuid.UUID = field(default_factory=uuid.uuid4)
    environment_id: uuid.UUID = field(default_factory=uuid.uuid4)
    versions: dict[uuid.UUID, int] = field(default_factory=dict)

    def _version(self, entity: uuid.UUID) -> int:
        self.versions[entity] = self.versions.get(entity, 0) + 1
        return self.versions[entity]

    def _event(self, payload: Any) -> Envelope:
        return new_event(
            payload,
            subject=str(self.project_id),
            source="catalog",
            organization_id=self.organization_id,
        )

    def cron_job(
        self,
        service_id: uuid.UUID,
        schedule: str,
        timezone: str = "UTC",
        *,
        deleted: bool = False,
    ) -> Envelope:
        return self._event(
            ev.ServiceChanged(
                service_id=service_id,
                organization_id=self.organization_id,
                project_id=self.project_id,
                environment_id=self.environment_id,
                name=f"job-{service_id.hex[:6]}",
                kind="cronjob",
                spec={
                    "kind": "cronjob",
                    "schedule": schedule,
                    "timezone": timezone,
                    "image": {"name": "busybox", "tag": "latest"},
                },
                deleted=deleted,
                version=self._version(service_id),
            )
        )

    def service_status(self, service_id: uuid.UUID, state: str = "DEPLOYED") -> Envelope:
        """The deployer's word on a service (``deployer.ServiceStatusChanged``)."""
        return new_event(
            deployer_events.ServiceStatusChanged(
                deployment_id=uuid.uuid4(),
                environment_id=self.environment_id,
                organization_id=self.organization_id,
                action="DEPLOY",
                service_id=service_id,
                state=state,
            ),
            subject=str(self.environment_id),
            source="deployer",
            organization_id=self.organization_id,
        )

    def deployed_job(
        self, service_id: uuid.UUID, schedule: str, timezone: str = "UTC"
    ) -> list[Envelope]:
        """A cron job as the catalog has it, then deployed."""
        return [self.cron_job(service_id, schedule, timezone), self.service_status(service_id)]

    def rule(self, **fields: Any) -> Envelope:
        return self._event(
            ev.DeploymentRuleChanged(
                environment_id=self.environment_id,
                organization_id=self.organization_id,
                version=self._version(self.environment_id),
                **fields,
            )
        )

    def environment_deleted(self) -> Envelope:
        return self._event(
            ev.EnvironmentChanged(
                environment_id=self.environment_id,
                organization_id=self.organization_id,
                project_id=self.project_id,
                name="env",
                mode="development",
                cluster_id=uuid.uuid4(),
                deleted=True,
                version=100,
            )
        )
