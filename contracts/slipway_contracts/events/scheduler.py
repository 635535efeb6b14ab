"""Commands produced by the scheduler service."""

from __future__ import annotations

import uuid
from datetime import datetime

from slipway_contracts.envelope import EventPayload

COMMANDS_TOPIC = "scheduler.command.v1"


class JobRunRequested(EventPayload):
    """Run a deployed cron job now: its schedule fired at ``scheduled_at``. The deployer runs it
    once per ``(service_id, scheduled_at)`` however often the command is delivered, and applies
    the job's concurrency policy (``forbid`` skips a run while one is running)."""

    event_type = "scheduler.JobRunRequested"
    topic = COMMANDS_TOPIC

    service_id: uuid.UUID
    organization_id: uuid.UUID
    environment_id: uuid.UUID
    scheduled_at: datetime


PAYLOADS: tuple[type[EventPayload], ...] = (JobRunRequested,)
