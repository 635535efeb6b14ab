"""The logs service's one consumer: log lines from the builder and the deployer, a batch of
events at a time (one transaction, a few statements for the whole batch)."""

from __future__ import annotations

from slipway_contracts.events.logs import LINES_TOPIC, LogLinesAppended
from slipway_libs.bus import ConsumerSpec
from slipway_libs.inbox import batch
from slipway_logs.usecases import ingest

LINES_GROUP = "logs.lines"


def consumers() -> list[ConsumerSpec]:
    return [
        ConsumerSpec(
            group_id=LINES_GROUP,
            topics=[LINES_TOPIC],
            handlers={LogLinesAppended.event_type: batch(ingest.append)},
        )
    ]
