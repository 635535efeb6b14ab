"""Composition root of the catalog service: the one place that wires its parts together."""

from pathlib import Path

from slipway_catalog.config import CatalogSettings
from slipway_libs.service import ServiceDefinition

DEFINITION = ServiceDefinition(
    name="catalog",
    settings_cls=CatalogSettings,
    migrations=Path(__file__).parent / "db" / "migrations",
)
