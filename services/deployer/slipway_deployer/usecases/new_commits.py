"""What is new in git: the scheduler's ``NewCommitAvailable`` (a push moved the branch some
applications build), recorded per service for the status's freshness (``domain.freshness``).

- Each command is applied once (the inbox); a push older than the one recorded changes
  nothing, so late or repeated deliveries cannot move a branch back.
- Only services the deployer knows in that environment are recorded (one deleted since, or
  another environment's, is skipped).
"""

from __future__ import annotations

import asyncpg
import structlog

from slipway_contracts import REGISTRY, Envelope
from slipway_contracts.events import scheduler as sev
from slipway_deployer.db import head_queries
from slipway_deployer.db import queries as q

log = structlog.get_logger(__name__)


async def on_new_commit(conn: asyncpg.Connection, envelope: Envelope) -> None:
    command = REGISTRY.parse(envelope)
    assert isinstance(command, sev.NewCommitAvailable)
    recorded = 0
    for service_id in command.service_ids:
        service = await q.service(conn, service_id)
        if service is None or service.environment_id != command.environment_id:
            continue
        recorded += await head_queries.record_head(
            conn,
            service_id=service_id,
            organization_id=command.organization_id,
            environment_id=command.environment_id,
            branch=command.branch,
            commit=command.commit,
            pushed_at=command.pushed_at,
        )
    log.info(
        "new_commit.recorded",
        environment_id=str(command.environment_id),
        commit=command.commit,
        services=recorded,
    )
