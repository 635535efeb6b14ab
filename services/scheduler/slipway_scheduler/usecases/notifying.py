"""From the deployer's deployment events to webhook deliveries.

The handler runs in the inbox transaction of the ``scheduler.webhooks`` consumer group: the
deliveries it writes commit with the inbox row, so an event redelivered by Kafka writes
nothing twice (and the (webhook, event) key makes sure of it besides). Each subscribed
webhook's filters are applied against the scheduler's projection of the catalog (project
names, environment modes); an environment the projection does not know yet matches only the
webhooks that do not filter (see ``domain.webhooks.matches``).
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import structlog

from slipway_contracts import REGISTRY, Envelope
from slipway_contracts.events import deployer as deployer_events
from slipway_scheduler.db import delivery_queries as queries
from slipway_scheduler.domain import deliveries, webhooks
from slipway_scheduler.domain.deliveries import Occurrence
from slipway_scheduler.domain.timers import Clock

log = structlog.get_logger(__name__)

# the deployer's events a webhook hears of, by the step of the deployment each reports
STEPS: dict[str, str] = {
    deployer_events.DeploymentQueued.event_type: "queued",
    deployer_events.DeploymentStarted.event_type: "started",
    deployer_events.DeploymentSucceeded.event_type: "succeeded",
    deployer_events.DeploymentFailed.event_type: "failed",
    deployer_events.DeploymentCanceled.event_type: "canceled",
}
EVENT_TYPES = tuple(STEPS)
DeploymentEvent = (
    deployer_events.DeploymentQueued
    | deployer_events.DeploymentStarted
    | deployer_events.DeploymentSucceeded
    | deployer_events.DeploymentFailed
    | deployer_events.DeploymentCanceled
)
_DETAILS = ("trigger", "reason", "message", "duration_s")


class Notifier:
    """The consumer's handler; ``clock`` dates the deliveries it writes."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    async def apply(self, conn: asyncpg.Connection, envelope: Envelope) -> None:
        event = REGISTRY.parse(envelope)
        assert isinstance(event, DeploymentEvent)  # only these are routed here
        name = deliveries.webhook_event(STEPS[envelope.type], event.action)
        subscribed = await queries.subscriptions(conn, event.organization_id, name)
        if not subscribed:
            return
        occurrence = await _occurrence(conn, envelope, event, name)
        written = [
            queries.NewDelivery(
                delivery_id=uuid.uuid4(),
                webhook_id=hook.webhook_id,
                organization_id=event.organization_id,
                event_id=envelope.id,
                event=name,
                body=deliveries.render(webhooks.Format(hook.format), occurrence),
            )
            for hook in subscribed
            if _wants(hook, occurrence)
        ]
        await queries.insert_deliveries(conn, written, self._clock.now())
        log.info(
            "webhooks.deliveries_written",
            webhook_event=name,
            event_id=str(envelope.id),
            deliveries=len(written),
            filtered_out=len(subscribed) - len(written),
        )


def _wants(hook: queries.Subscription, occurrence: Occurrence) -> bool:
    return webhooks.matches(
        subscribed=hook.events,
        pattern=hook.project_pattern,
        modes=hook.environment_modes,
        event=occurrence.event,
        project_name=occurrence.project_name,
        environment_mode=occurrence.environment_mode,
    )


async def _occurrence(
    conn: asyncpg.Connection,
    envelope: Envelope,
    event: DeploymentEvent,
    name: str,
) -> Occurrence:
    facts = await queries.environment_facts(conn, event.environment_id)
    said = event.model_dump(mode="json")
    details: dict[str, Any] = {key: said[key] for key in _DETAILS if key in said}
    return Occurrence(
        event=name,
        event_id=envelope.id,
        occurred_at=envelope.occurred_at,
        organization_id=event.organization_id,
        deployment_id=event.deployment_id,
        environment_id=event.environment_id,
        action=event.action,
        project_id=None if facts is None else facts.project_id,
        project_name=None if facts is None else facts.project_name,
        environment_name=None if facts is None else facts.environment_name,
        environment_mode=None if facts is None else facts.mode,
        details=details,
    )
