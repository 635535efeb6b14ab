"""Kafka subscribers of the builder: the deployer's build commands, each handled by a use case in
the inbox transaction of the ``builder.commands`` group."""

from __future__ import annotations

from slipway_builder.usecases import commands
from slipway_contracts.events.deployer import (
    BUILD_COMMANDS_TOPIC,
    BuildCancelRequested,
    BuildRequested,
)
from slipway_libs.bus import ConsumerSpec

COMMANDS_GROUP = "builder.commands"


def consumers() -> list[ConsumerSpec]:
    return [
        ConsumerSpec(
            group_id=COMMANDS_GROUP,
            topics=[BUILD_COMMANDS_TOPIC],
            handlers={
                BuildRequested.event_type: commands.on_build_requested,
                BuildCancelRequested.event_type: commands.on_cancel_requested,
            },
        )
    ]
