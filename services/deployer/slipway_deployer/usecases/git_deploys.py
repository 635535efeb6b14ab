"""Applications deployed by a git push: the scheduler's ``ServiceDeployRequested`` commands,
queued as a deploy of that one service at the pushed commit, with the trigger ``git_push`` and
the actor ``git``.

- Each command is applied once: the consumer's inbox skips a redelivered one, and the scheduler
  sends one command per (delivery, service).
- The build is pinned to the commit (a one-service deploy with a version builds that commit).
- A service the deployer does not know (deleted since, or not projected yet) is done: nothing
  queued, logged. A deploy the service's or environment's state refuses (409) is done too,
  logged; identical pending requests merge as any request does.
"""

from __future__ import annotations

import asyncpg
import structlog

from slipway_contracts import REGISTRY, Envelope
from slipway_contracts.events import scheduler as sev
from slipway_deployer.db import queries as q
from slipway_deployer.domain import state_machine as sm
from slipway_deployer.usecases import requests
from slipway_libs.actor import Actor

log = structlog.get_logger(__name__)

GIT = Actor(type="system", id="git", name="git push", origin="git")


async def on_deploy_requested(conn: asyncpg.Connection, envelope: Envelope) -> None:
    command = REGISTRY.parse(envelope)
    assert isinstance(command, sev.ServiceDeployRequested)
    service = await q.service(conn, command.service_id)
    if service is None or service.environment_id != command.environment_id:
        log.info("git_deploy.unknown_service", service_id=str(command.service_id))
        return
    await requests.request_for_event(
        conn,
        "git_deploy",
        {"service_id": str(command.service_id), "commit": command.commit},
        environment_id=command.environment_id,
        action=sm.Action.DEPLOY,
        actor=GIT,
        service_id=command.service_id,
        version=command.commit,
        trigger=sm.TriggerKind.GIT_PUSH.value,
    )
