"""Composition root of the scheduler service: the one place that wires its parts together."""

from pathlib import Path

from slipway_libs.service import ServiceDefinition, no_parts
from slipway_scheduler.config import SchedulerSettings

DEFINITION = ServiceDefinition(
    name="scheduler",
    settings_cls=SchedulerSettings,
    migrations=Path(__file__).parent / "db" / "migrations",
    parts=no_parts,
)
