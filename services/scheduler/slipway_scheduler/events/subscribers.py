"""Kafka subscribers of the scheduler: the catalog's full-state events (its projection of cron
jobs, deployment rules, environments and projects) and the deployer's service statuses (which
jobs it runs), which arm the timers; and the deployer's deployment events, which become the
outgoing webhooks' deliveries (a group of their own, so that webhooks never hold up the
timers; the deliveries are only written here, the worker sends them); and the organizations'
git credentials, which polls of private repositories use. Thin: each handler is a
use case run in the inbox transaction of its consumer group."""

from __future__ import annotations

from slipway_contracts.events import catalog as catalog_events
from slipway_contracts.events import deployer as deployer_events
from slipway_libs.bus import ConsumerSpec
from slipway_scheduler.domain.timers import Clock
from slipway_scheduler.usecases import git_credentials, notifying
from slipway_scheduler.usecases.projection import EVENT_TYPES, STATUS_TYPES, Projection

CATALOG_GROUP = "scheduler.catalog"
DEPLOYMENTS_GROUP = "scheduler.deployments"
WEBHOOKS_GROUP = "scheduler.webhooks"
GIT_CREDENTIALS_GROUP = "scheduler.git_credentials"


def consumers(clock: Clock) -> list[ConsumerSpec]:
    projection = Projection(clock)
    notifier = notifying.Notifier(clock)
    return [
        ConsumerSpec(
            group_id=CATALOG_GROUP,
            topics=[catalog_events.PROJECT_TOPIC],
            handlers=dict.fromkeys(EVENT_TYPES, projection.apply),
        ),
        ConsumerSpec(
            group_id=DEPLOYMENTS_GROUP,
            topics=[deployer_events.DEPLOYMENT_TOPIC],
            handlers=dict.fromkeys(STATUS_TYPES, projection.apply),
        ),
        ConsumerSpec(
            group_id=WEBHOOKS_GROUP,
            topics=[deployer_events.DEPLOYMENT_TOPIC],
            handlers=dict.fromkeys(notifying.EVENT_TYPES, notifier.apply),
        ),
        # the organizations' git credentials, for polling private repositories
        ConsumerSpec(
            group_id=GIT_CREDENTIALS_GROUP,
            topics=[catalog_events.GIT_CREDENTIAL_TOPIC],
            handlers=dict.fromkeys(git_credentials.EVENT_TYPES, git_credentials.on_changed),
        ),
    ]
