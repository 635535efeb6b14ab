"""Cancel right after deploy, while the worker claims the request (a race the permission matrix
met): the cancel must find the request running, not answer NOTHING_TO_CANCEL.

The claim takes no lock on the environment, so between the cancel's read of the running
request (none yet) and its read of the queue (empty: just claimed) the request moved. The
queries are replaced by a scripted fake that plays exactly that interleaving.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from slipway_deployer.domain import state_machine as sm
from slipway_deployer.domain.catalog import CatalogEnvironment
from slipway_deployer.domain.deployments import Deployment, EnvironmentStatus
from slipway_deployer.usecases import requests
from slipway_libs.actor import SYSTEM

ENV, ORG, DEPLOYMENT = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
NOW = datetime.now(UTC)
CLAIMED = Deployment(
    id=DEPLOYMENT,
    seq=1,
    organization_id=ORG,
    project_id=uuid.uuid4(),
    environment_id=ENV,
    action=sm.Action.DEPLOY.value,
    service_ids=(),
    version=None,
    trigger="user",
    rollback_of=None,
    requested_by=None,
    status="ONGOING",
    reason=None,
    message=None,
    snapshot=None,
    trace_carrier=None,
    created_at=NOW,
    started_at=NOW,
    finished_at=None,
    heartbeat_at=NOW,
    planned_at=None,
)


class ClaimedInBetween:
    """The deployer's queries, with the worker claiming the one request after the first read."""

    def __init__(self) -> None:
        self.claimed = False
        self.canceling: list[uuid.UUID] = []
        self.notified: list[str] = []

    async def environment(self, conn: Any, env_id: uuid.UUID) -> CatalogEnvironment:
        return CatalogEnvironment(
            id=env_id,
            organization_id=ORG,
            project_id=CLAIMED.project_id,
            name="production",
            mode="PRODUCTION",
            cluster_id=uuid.uuid4(),
            deleted=False,
            version=1,
        )

    async def lock_environment(self, conn: Any, env_id: uuid.UUID) -> None:
        return None

    async def environment_status(self, conn: Any, env_id: uuid.UUID) -> EnvironmentStatus:
        return EnvironmentStatus(
            environment_id=env_id,
            organization_id=ORG,
            state=sm.State.QUEUED.value,
            last_action=sm.Action.DEPLOY.value,
            last_deployment_id=None,
            updated_at=NOW,
        )

    async def running(self, conn: Any, env_id: uuid.UUID) -> Deployment | None:
        if not self.claimed:
            self.claimed = True  # the worker claims it right after this read
            return None
        return CLAIMED

    async def queued(self, conn: Any, env_id: uuid.UUID) -> list[Deployment]:
        return []  # already claimed

    async def update_deployment(self, conn: Any, dep: uuid.UUID, **fields: Any) -> Deployment:
        self.canceling.append(dep)
        assert dep == CLAIMED.id
        return dataclasses.replace(CLAIMED, **fields)

    async def notify(self, conn: Any, channel: str, payload: str) -> None:
        self.notified.append(channel)

    async def save_environment_status(self, *args: Any) -> None:
        return None


async def test_a_cancel_finds_the_request_the_worker_just_claimed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = ClaimedInBetween()
    monkeypatch.setattr(requests, "q", fake)

    async def no_audit(*args: Any, **kwargs: Any) -> None:
        return None

    monkeypatch.setattr(requests, "audit", SimpleNamespace(record=no_audit))
    row = await requests.cancel(object(), ENV, SYSTEM)
    assert row.id == DEPLOYMENT
    assert row.status == "CANCELING"
    assert fake.canceling == [DEPLOYMENT]
