"""Cancel right after deploy, while the worker claims the request (a race the permission matrix
met): the cancel must find the request running, not answer NOTHING_TO_CANCEL.

The claim takes no lock on the environment, so between the cancel's read of the running
request (none yet) and its read of the queue (empty: just claimed) the request moved. The
queries are replaced by a scripted fake that plays exactly that interleaving.
"""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import Any

import pytest

from slipway_deployer.domain import state_machine as sm
from slipway_deployer.usecases import requests
from slipway_libs.actor import SYSTEM

ENV, ORG, DEPLOYMENT = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


class ClaimedInBetween:
    """The deployer's queries, with the worker claiming the one request after the first read."""

    def __init__(self) -> None:
        self.claimed = False
        self.canceling: list[uuid.UUID] = []
        self.notified: list[str] = []

    async def environment(self, conn: Any, env_id: uuid.UUID) -> dict[str, Any]:
        return {"id": env_id, "organization_id": ORG, "project_id": uuid.uuid4()}

    async def lock_environment(self, conn: Any, env_id: uuid.UUID) -> None:
        return None

    async def environment_status(self, conn: Any, env_id: uuid.UUID) -> dict[str, Any]:
        return {"state": sm.State.QUEUED.value}

    async def running(self, conn: Any, env_id: uuid.UUID) -> dict[str, Any] | None:
        if not self.claimed:
            self.claimed = True  # the worker claims it right after this read
            return None
        return {"id": DEPLOYMENT, "action": sm.Action.DEPLOY}

    async def queued(self, conn: Any, env_id: uuid.UUID) -> list[dict[str, Any]]:
        return []  # already claimed

    async def update_deployment(self, conn: Any, dep: uuid.UUID, **fields: Any) -> dict[str, Any]:
        self.canceling.append(dep)
        return {"id": dep, **fields}

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
    assert row["id"] == DEPLOYMENT
    assert row["status"] == "CANCELING"
    assert fake.canceling == [DEPLOYMENT]
