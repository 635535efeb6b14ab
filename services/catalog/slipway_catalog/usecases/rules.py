"""An environment's deployment rule: auto-stop/auto-start schedule and auto-preview."""

from __future__ import annotations

import uuid

import asyncpg

from slipway_catalog.db import queries as q
from slipway_catalog.domain.rules import DeploymentRule, SavedRule
from slipway_catalog.usecases import environments, publish
from slipway_libs import audit
from slipway_libs.actor import Actor


async def get(conn: asyncpg.Connection, env_id: uuid.UUID) -> SavedRule:
    env = await environments.get(conn, env_id)
    row = await q.rule(conn, env_id)
    if row is None:  # environments always get one; tolerate one created before that rule
        row = await q.upsert_rule(
            conn, env_id=env_id, org_id=env.organization_id, rule=environments.DEFAULT_RULE
        )
    return row


async def put(
    conn: asyncpg.Connection, actor: Actor, env_id: uuid.UUID, rule: DeploymentRule
) -> SavedRule:
    env = await environments.get(conn, env_id, lock=True)
    row = await q.upsert_rule(
        conn, env_id=env_id, org_id=env.organization_id, rule=rule.model_dump()
    )
    await publish.rule(conn, row, env.project_id)
    await audit.record(
        conn,
        producer=publish.SOURCE,
        actor=actor,
        organization_id=env.organization_id,
        action="UPDATE",
        target_type="DEPLOYMENT_RULE",
        target_id=env_id,
        target_name=env.name,
        project_id=env.project_id,
        environment_id=env_id,
        change=rule.model_dump(),
    )
    return row
