"""Composition root of the deployer service: the one place that wires its parts together."""

from collections.abc import Sequence
from pathlib import Path

from slipway_deployer import projection
from slipway_deployer.config import DeployerSettings
from slipway_libs.bus import ConsumerSpec
from slipway_libs.service import Container, ServiceDefinition


def _consumers(container: Container) -> Sequence[ConsumerSpec]:
    return [projection.consumer()]


DEFINITION = ServiceDefinition(
    name="deployer",
    settings_cls=DeployerSettings,
    migrations=Path(__file__).parent / "db" / "migrations",
    consumers=_consumers,
)
