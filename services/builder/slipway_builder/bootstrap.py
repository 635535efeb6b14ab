"""Composition root of the builder service: the one place that wires its parts together."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from slipway_builder import usecases
from slipway_builder.config import BuilderSettings
from slipway_builder.executor import Executor
from slipway_contracts.events.deployer import (
    BUILD_COMMANDS_TOPIC,
    BuildCancelRequested,
    BuildRequested,
)
from slipway_libs.bus import ConsumerSpec
from slipway_libs.crypto import Sealer
from slipway_libs.service import ApiTask, Container, ServiceDefinition, no_parts

COMMANDS_GROUP = "builder.commands"


def _consumers(container: Container[BuilderSettings, None]) -> Sequence[ConsumerSpec]:
    return [
        ConsumerSpec(
            group_id=COMMANDS_GROUP,
            topics=[BUILD_COMMANDS_TOPIC],
            handlers={
                BuildRequested.event_type: usecases.on_build_requested,
                BuildCancelRequested.event_type: usecases.on_cancel_requested,
            },
        )
    ]


def _worker_tasks(container: Container[BuilderSettings, None]) -> Sequence[ApiTask]:
    settings = container.settings
    sealer = Sealer.from_setting(settings.transport_keys) if settings.transport_keys else None
    executor = Executor(pool=container.require_pool(), settings=settings, sealer=sealer)
    return [executor.run]


DEFINITION = ServiceDefinition(
    name="builder",
    settings_cls=BuilderSettings,
    migrations=Path(__file__).parent / "db" / "migrations",
    parts=no_parts,
    consumers=_consumers,
    worker_tasks=_worker_tasks,
)
