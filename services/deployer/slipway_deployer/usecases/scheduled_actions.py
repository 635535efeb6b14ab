"""Environments stopped and started by their deployment rule: the scheduler's
``EnvironmentActionRequested`` commands, queued as requests with the trigger ``schedule``.

- Each command is applied once: the consumer's inbox skips a redelivered one, and the scheduler
  sends one command per (environment, action, scheduled instant).
- A stop where nothing runs, or one the environment's state refuses, is done: nothing queued.
- A start deploys only an environment that is stopped (or being stopped): one never deployed,
  or running, is left as it is.
- An environment the deployer does not know (deleted since) is done too.
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

SCHEDULER = Actor(type="system", id="scheduler", name="scheduler", origin="scheduler")
_STARTABLE = (sm.State.STOPPED, sm.State.STOP_QUEUED, sm.State.STOPPING)


async def on_action_requested(conn: asyncpg.Connection, envelope: Envelope) -> None:
    command = REGISTRY.parse(envelope)
    assert isinstance(command, sev.EnvironmentActionRequested)
    env_id = command.environment_id
    if command.action == "deploy" and not await _stopped(conn, command):
        log.info("scheduled_action.nothing_to_start", environment_id=str(env_id))
        return
    action = sm.Action.STOP if command.action == "stop" else sm.Action.DEPLOY
    await requests.request_for_event(
        conn,
        "scheduled_action",
        {
            "environment_id": str(env_id),
            "action": action.value,
            "scheduled_at": command.scheduled_at.isoformat(),
        },
        environment_id=env_id,
        action=action,
        actor=SCHEDULER,
        trigger=sm.TriggerKind.SCHEDULE.value,
    )


async def _stopped(conn: asyncpg.Connection, command: sev.EnvironmentActionRequested) -> bool:
    status = await q.environment_status(conn, command.environment_id)
    return status is not None and sm.State(status.state) in _STARTABLE
