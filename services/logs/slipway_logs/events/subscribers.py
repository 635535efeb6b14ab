"""The logs service's one consumer: log lines from the builder and the deployer, a batch of
events at a time (one transaction, a few statements for the whole batch)."""

from __future__ import annotations

from slipway_contracts.events.deployer import DEPLOYMENT_TOPIC
from slipway_contracts.events.logs import LINES_TOPIC, LogLinesAppended
from slipway_libs.bus import ConsumerSpec
from slipway_libs.inbox import batch
from slipway_logs.usecases import deployment_ends, ingest

LINES_GROUP = "logs.lines"
# which deployments have ended: their followers are sent ``end``
DEPLOYMENTS_GROUP = "logs.deployments"


def consumers() -> list[ConsumerSpec]:
    return [
        ConsumerSpec(
            group_id=LINES_GROUP,
            topics=[LINES_TOPIC],
            handlers={LogLinesAppended.event_type: batch(ingest.append)},
        ),
        ConsumerSpec(
            group_id=DEPLOYMENTS_GROUP,
            topics=[DEPLOYMENT_TOPIC],
            handlers={event_type: deployment_ends.record for event_type in deployment_ends.ENDS},
        ),
    ]
