"""Composition root of the builder service: the one place that wires its parts together."""

from pathlib import Path

from slipway_builder.config import BuilderSettings
from slipway_libs.service import ServiceDefinition

DEFINITION = ServiceDefinition(
    name="builder",
    settings_cls=BuilderSettings,
    migrations=Path(__file__).parent / "db" / "migrations",
)
