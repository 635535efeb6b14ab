"""Which deployments have ended, from the deployer's ``deployer.deployment.v1`` events: a follower
of a deployment's lines is sent ``end`` once its deployment is recorded here (in the inbox's
transaction: a redelivered event records nothing twice, and a later one changes nothing)."""

from __future__ import annotations

import uuid

import asyncpg
from pydantic import ValidationError

from slipway_contracts import Envelope
from slipway_contracts.events.deployer import (
    DeploymentCanceled,
    DeploymentFailed,
    DeploymentSucceeded,
)
from slipway_libs.errors import PermanentError
from slipway_logs.db import queries

# the newer status vocabulary (DESIGN §1): how the deployment's action ended
Ended = type[DeploymentSucceeded] | type[DeploymentFailed] | type[DeploymentCanceled]
ENDS: dict[str, tuple[Ended, str]] = {
    DeploymentSucceeded.event_type: (DeploymentSucceeded, "SUCCESS"),
    DeploymentFailed.event_type: (DeploymentFailed, "ERROR"),
    DeploymentCanceled.event_type: (DeploymentCanceled, "CANCELED"),
}


async def record(conn: asyncpg.Connection, envelope: Envelope) -> None:
    model, status = ENDS[envelope.type]
    try:
        payload = model.model_validate(envelope.data)
    except ValidationError as exc:
        raise PermanentError(f"unusable deployment event: {exc}") from exc
    deployment_id: uuid.UUID = payload.deployment_id
    await queries.record_deployment_end(conn, deployment_id, payload.organization_id, status)
