"""Typed settings, read from the environment (and ``.devstack/env`` when present).

Each service subclasses ``ServiceSettings`` with its own prefix, e.g. ``SLIPWAY_CATALOG_``, so
``SLIPWAY_CATALOG_DATABASE_URL`` is the catalog's database. Settings shared by every service
(Kafka, telemetry) use the plain ``SLIPWAY_`` prefix. Settings are built once, by the composition
root; a missing required value fails at start-up with the variable's name.

Credentials are per service (DESIGN, security model): its Kafka principal
(``SLIPWAY_<SERVICE>_KAFKA_USERNAME`` / ``_PASSWORD``), the token it presents to other services'
internal APIs (``SLIPWAY_<SERVICE>_INTERNAL_TOKEN``) and the callers its own internal API accepts
(``SLIPWAY_<SERVICE>_INTERNAL_CALLERS``: ``name:sha256-hex-of-their-token,...``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

SaslMechanism = Literal["SCRAM-SHA-256", "SCRAM-SHA-512"]


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
    kafka_sasl_mechanism: SaslMechanism = "SCRAM-SHA-256"
    otlp_endpoint: str | None = None
    log_level: str = "INFO"
    log_json: bool = True
    environment: str = "dev"
    # prepended to every topic and consumer group: several installations (or test runs) can
    # share one Kafka cluster without seeing each other's events
    topic_prefix: str = ""


class ServiceSettings(BaseSettings):
    """Settings of one service; subclasses set ``model_config`` with their own ``env_prefix``."""

    model_config = SettingsConfigDict(extra="ignore")

    http_host: str = "127.0.0.1"
    http_port: int = 8000
    # a name for this process, answered by ``/healthz`` and ``/readyz``: whoever started it
    # (a supervisor, a test platform) knows it reached this process and not another one that
    # took its port first (a port chosen free is free only until someone binds it)
    instance_id: str = ""
    db_pool_min: int = 1
    db_pool_max: int = 10
    relay_batch_size: int = 500
    relay_poll_interval_s: float = 0.5
    consumer_max_retries: int = 5
    consumer_backoff_s: float = 0.2
    consumer_batch_size: int = 500
    # this service's Kafka principal (SASL over the loopback listener); none: an
    # unauthenticated cluster (only a cluster that nothing untrusted can reach)
    kafka_username: str | None = None
    kafka_password: SecretStr | None = None
    # the token this service presents when it calls another service's internal API
    internal_token: SecretStr | None = None
    # who may call this service's internal API: "name:<sha256 hex of its token>,..."; empty
    # leaves the internal API open (in-process tests only: the devstack and compose set it)
    internal_callers: str = ""

    def internal_caller_digests(self) -> dict[str, str]:
        callers = {}
        for item in self.internal_callers.split(","):
            name, sep, digest = item.strip().partition(":")
            if not sep or not name or len(digest) != 64:
                if item.strip():
                    raise ValueError(f"internal_callers: {item.strip()!r} is not name:sha256")
                continue
            callers[name] = digest.lower()
        return callers

    def internal_token_value(self) -> str | None:
        return self.internal_token.get_secret_value() if self.internal_token else None


@dataclass(frozen=True)
class KafkaConnection:
    """How a process reaches Kafka: the bootstrap servers and, when the cluster authenticates
    clients, the SASL/SCRAM principal it connects as. Every aiokafka client of the platform is
    built with ``**kafka.options()``."""

    bootstrap_servers: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    mechanism: SaslMechanism = "SCRAM-SHA-256"

    def options(self) -> dict[str, Any]:
        if self.username is None:
            return {"bootstrap_servers": self.bootstrap_servers}
        return {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": "SASL_PLAINTEXT",  # loopback only; a remote cluster needs SSL
            "sasl_mechanism": self.mechanism,
            "sasl_plain_username": self.username,
            "sasl_plain_password": self.password or "",
        }


def kafka_connection(platform: PlatformSettings, service: ServiceSettings) -> KafkaConnection:
    """The connection of one service: the platform's brokers, the service's own principal."""
    password = service.kafka_password.get_secret_value() if service.kafka_password else None
    return KafkaConnection(
        platform.kafka_bootstrap_servers,
        username=service.kafka_username,
        password=password,
        mechanism=platform.kafka_sasl_mechanism,
    )


def load(cls: type[BaseSettings], **overrides: Any) -> Any:
    """Build a settings object from the process environment, falling back to the devstack file."""
    env_file = devstack_env_file()
    return cls(_env_file=env_file, **overrides)


class DatabaseServiceSettings(ServiceSettings):
    """A service that owns a database: its URL is required."""

    database_url: str = Field(min_length=1)
