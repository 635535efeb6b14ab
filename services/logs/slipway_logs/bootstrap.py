"""Composition root of the logs service: the one place that wires its parts together."""

from pathlib import Path

from slipway_libs.service import ServiceDefinition, no_parts
from slipway_logs.config import LogsSettings

DEFINITION = ServiceDefinition(
    name="logs",
    settings_cls=LogsSettings,
    migrations=Path(__file__).parent / "db" / "migrations",
    parts=no_parts,
)
