"""Composition root of the deployer service: the one place that wires its parts together."""

from pathlib import Path

from slipway_deployer.config import DeployerSettings
from slipway_libs.service import ServiceDefinition

DEFINITION = ServiceDefinition(
    name="deployer",
    settings_cls=DeployerSettings,
    migrations=Path(__file__).parent / "db" / "migrations",
)
