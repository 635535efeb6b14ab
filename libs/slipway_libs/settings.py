"""Typed settings, read from the environment (and ``.devstack/env`` when present).

Each service subclasses ``ServiceSettings`` with its own prefix, e.g. ``SLIPWAY_CATALOG_``, so
``SLIPWAY_CATALOG_DATABASE_URL`` is the catalog's database. Settings shared by every service
(Kafka, telemetry) use the plain ``SLIPWAY_`` prefix. Settings are built once, by the composition
root; a missing required value fails at start-up with the variable's name.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def devstack_env_file() -> Path | None:
    """The devstack's ``.devstack/env``, found from ``SLIPWAY_DEVSTACK_ENV`` or upward from cwd."""
    explicit = os.environ.get("SLIPWAY_DEVSTACK_ENV")
    if explicit:
        return Path(explicit)
    for directory in (Path.cwd(), *Path.cwd().parents):
        candidate = directory / ".devstack" / "env"
        if candidate.exists():
            return candidate
    return None


def read_env_file(path: Path | None = None) -> dict[str, str]:
    path = path or devstack_env_file()
    if path is None or not path.exists():
        return {}
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


class PlatformSettings(BaseSettings):
    """What every process shares: the broker, telemetry and logging."""

    model_config = SettingsConfigDict(env_prefix="SLIPWAY_", extra="ignore")

    kafka_bootstrap_servers: str = "127.0.0.1:19092"
    otlp_endpoint: str | None = None
    log_level: str = "INFO"
    log_json: bool = True
    environment: str = "dev"
    internal_token: str | None = None
    # prepended to every topic and consumer group: several installations (or test runs) can
    # share one Kafka cluster without seeing each other's events
    topic_prefix: str = ""


class ServiceSettings(BaseSettings):
    """Settings of one service; subclasses set ``model_config`` with their own ``env_prefix``."""

    model_config = SettingsConfigDict(extra="ignore")

    http_host: str = "127.0.0.1"
    http_port: int = 8000
    db_pool_min: int = 1
    db_pool_max: int = 10
    relay_batch_size: int = 500
    relay_poll_interval_s: float = 0.5
    consumer_max_retries: int = 5
    consumer_backoff_s: float = 0.2
    consumer_batch_size: int = 500


def load(cls: type[BaseSettings], **overrides: Any) -> Any:
    """Build a settings object from the process environment, falling back to the devstack file."""
    env_file = devstack_env_file()
    return cls(_env_file=env_file, **overrides)


class DatabaseServiceSettings(ServiceSettings):
    """A service that owns a database: its URL is required."""

    database_url: str = Field(min_length=1)
