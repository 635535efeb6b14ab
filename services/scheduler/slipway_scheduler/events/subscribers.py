"""Kafka subscribers of the scheduler: the catalog's full-state events (its projection of cron
jobs, deployment rules and environments, which arms the timers). Thin: the handler is a use
case run in the inbox transaction of its consumer group."""

from __future__ import annotations

from slipway_contracts.events import catalog as catalog_events
from slipway_libs.bus import ConsumerSpec
from slipway_scheduler.domain.timers import Clock
from slipway_scheduler.usecases.projection import EVENT_TYPES, Projection

CATALOG_GROUP = "scheduler.catalog"


def consumers(clock: Clock) -> list[ConsumerSpec]:
    projection = Projection(clock)
    return [
        ConsumerSpec(
            group_id=CATALOG_GROUP,
            topics=[catalog_events.PROJECT_TOPIC],
            handlers=dict.fromkeys(EVENT_TYPES, projection.apply),
        )
    ]
