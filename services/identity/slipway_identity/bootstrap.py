"""Composition root of the identity service: the one place that wires its parts together."""

from pathlib import Path

from slipway_identity.config import IdentitySettings
from slipway_libs.service import ServiceDefinition

DEFINITION = ServiceDefinition(
    name="identity",
    settings_cls=IdentitySettings,
    migrations=Path(__file__).parent / "db" / "migrations",
)
