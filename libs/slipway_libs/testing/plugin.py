"""pytest fixtures on the real devstack (PostgreSQL and Kafka started by ``make infra-up``).

- ``devstack``: the connection settings from ``.devstack/env``; a test that needs it fails with
  a clear message when the devstack is not running.
- ``database_factory``: fresh databases with the real migrations applied (dropped at the end).
- ``topic_factory``: unique Kafka topics per test (deleted at the end).
Ids are unique per test, so tests can run in parallel (pytest-xdist).
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from slipway_contracts import TopicSpec
from slipway_libs.bus import delete_topics, ensure_topics
from slipway_libs.kafka_access import ACCESS, admin_connection
from slipway_libs.migrations import apply_migrations, service_migrations
from slipway_libs.settings import KafkaConnection, devstack_env_file, read_env_file
from slipway_libs.telemetry import configure_tracing
from slipway_libs.testing.platform import (
    WITH_DATABASE,
    Platform,
    delete_platform_topics,
    revoke_acls,
    start_platform,
)

KUBERNETES_SWITCH = "SLIPWAY_DEVSTACK_KUBERNETES"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``kubernetes`` need the devstack's Kubernetes API, which ``make infra-up``
    starts only behind its switch (its first build takes minutes): without the switch they are
    skipped, with it they run and fail if the API is not there."""
    if os.environ.get(KUBERNETES_SWITCH) == "1":
        return
    skip = pytest.mark.skip(
        reason=f"the devstack's Kubernetes API is behind {KUBERNETES_SWITCH}=1 (set it for "
        "make infra-up and for the test run)"
    )
    for item in items:
        if item.get_closest_marker("kubernetes") is not None:
            item.add_marker(skip)


@dataclass(frozen=True)
class Devstack:
    env: dict[str, str]

    @property
    def kafka(self) -> KafkaConnection:
        """As the admin principal (a super user: tests create, read and write any topic)."""
        return admin_connection(self.env)

    def kafka_principal(self, service: str) -> KafkaConnection:
        """As one service's own principal (confined by its ACLs)."""
        return replace(
            self.kafka,
            username=self.env.get(f"SLIPWAY_{service.upper()}_KAFKA_USERNAME"),
            password=self.env.get(f"SLIPWAY_{service.upper()}_KAFKA_PASSWORD"),
        )

    def kafka_passwords(self) -> dict[str, str]:
        """Service -> its Kafka password, for the services the devstack has principals for."""
        return {
            name: self.env[f"SLIPWAY_{name.upper()}_KAFKA_PASSWORD"]
            for name in ACCESS
            if f"SLIPWAY_{name.upper()}_KAFKA_PASSWORD" in self.env
        }

    @property
    def registry_auth(self) -> tuple[str, str] | None:
        """The registry admin's (username, password), for tests that read the registry."""
        user, password = (self.env.get(f"SLIPWAY_REGISTRY_{k}") for k in ("USERNAME", "PASSWORD"))
        return (user, password) if user and password else None

    @property
    def admin_url(self) -> str:
        return self.env["SLIPWAY_PG_ADMIN_URL"]

    def database_url(self, name: str, *, role: str | None = None, password: str = "") -> str:
        parts = urlsplit(self.admin_url)
        if role is not None:
            parts = parts._replace(netloc=f"{role}:{password}@{parts.hostname}:{parts.port}")
        return urlunsplit(parts._replace(path=f"/{name}"))


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def devstack() -> Devstack:
    path = devstack_env_file()
    env = {
        **read_env_file(path),
        **{k: v for k, v in os.environ.items() if k.startswith("SLIPWAY_")},
    }
    if "SLIPWAY_PG_ADMIN_URL" not in env or "SLIPWAY_KAFKA_BOOTSTRAP_SERVERS" not in env:
        pytest.fail("the devstack is not running: run `make infra-up` (make test does it for you)")
    return Devstack(env)


DatabaseFactory = Callable[..., Awaitable[str]]


@pytest.fixture(scope="session")
async def database_factory(devstack: Devstack) -> AsyncIterator[DatabaseFactory]:
    """``await database_factory(service, migrations_dir)``: the DSN of a fresh migrated database."""
    created: list[str] = []

    async def admin(sql: str) -> None:
        # a connection per statement: fault tests restart PostgreSQL under this fixture
        conn = await asyncpg.connect(devstack.admin_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def make(service: str = "test", migrations: Path | None = None) -> str:
        name = f"t_{_worker()}_{service}_{uuid.uuid4().hex[:10]}"
        # the database's own role, as in the devstack: no superuser, no BYPASSRLS, so that
        # tests see what production sees (row-level tenant policies hold)
        password = secrets.token_hex(16)
        await admin(
            f"CREATE ROLE \"{name}\" LOGIN PASSWORD '{password}'"
            " NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS"
        )
        await admin(f'CREATE DATABASE "{name}" OWNER "{name}"')
        await admin(f'REVOKE CONNECT ON DATABASE "{name}" FROM PUBLIC')
        created.append(name)
        dsn = devstack.database_url(name, role=name, password=password)
        conn = await asyncpg.connect(dsn)
        try:
            await apply_migrations(conn, service_migrations(service, migrations))
        finally:
            await conn.close()
        return dsn

    yield make
    for name in created:
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin(f'DROP ROLE IF EXISTS "{name}"')


TopicFactory = Callable[..., Awaitable[str]]


@pytest.fixture
async def topic_factory(devstack: Devstack) -> AsyncIterator[TopicFactory]:
    """``await topic_factory(partitions=3)`` → the name of a new, empty, unique topic."""
    created: list[str] = []

    async def make(partitions: int = 3, prefix: str = "test") -> str:
        name = f"{prefix}.{_worker()}.{uuid.uuid4().hex[:12]}.v1"
        await ensure_topics(
            devstack.kafka, [TopicSpec(name=name, description="test", partitions=partitions)]
        )
        created.append(name)
        return name

    yield make
    if created:
        await delete_topics(devstack.kafka, created)


@pytest.fixture(scope="session", autouse=True)
def _tracer_provider() -> InMemorySpanExporter:
    # OpenTelemetry allows one global provider per process: install it once, clear per test.
    # Autouse, so that it is the first: a test that opens a service's container in-process
    # (its composition root configures tracing) would otherwise install its own, for good.
    exporter = InMemorySpanExporter()
    configure_tracing("tests", exporter=exporter)
    return exporter


@pytest.fixture
def span_exporter(_tracer_provider: InMemorySpanExporter) -> Iterator[InMemorySpanExporter]:
    """The spans finished during this test (in-memory exporter)."""
    _tracer_provider.clear()
    yield _tracer_provider
    _tracer_provider.clear()


@pytest.fixture
def unique() -> Iterator[str]:
    yield uuid.uuid4().hex[:12]


PlatformFactory = Callable[..., Awaitable[Platform]]


@pytest.fixture(scope="module")
async def platform_factory(
    devstack: Devstack, database_factory: DatabaseFactory
) -> AsyncIterator[PlatformFactory]:
    """``await platform_factory(["identity", "gateway"])``: real service processes, ready.

    Module-scoped: a module's platforms stop when the module ends. Kept to the end of the run,
    every module's six services went on polling PostgreSQL and Kafka beside the later modules,
    which slowed the whole run and exhausted PostgreSQL's connections."""
    started: list[Platform] = []

    async def make(names: list[str], extra_env: dict[str, str] | None = None) -> Platform:
        databases = {name: await database_factory(name) for name in names if name in WITH_DATABASE}
        # the devstack's registry and image storage (builder and deployer use them), and the
        # registry users of the builder and the deployer (the registry refuses anonymous ones)
        shared = (
            "REGISTRY",
            "BUILDAH_ROOT",
            "BUILDAH_RUNROOT",
            "BUILDAH_STORAGE_DRIVER",
            *(
                f"{s}_REGISTRY_{k}"
                for s in ("BUILDER", "DEPLOYER")
                for k in ("USERNAME", "PASSWORD")
            ),
        )
        env = {
            f"SLIPWAY_{k}": devstack.env[f"SLIPWAY_{k}"]
            for k in shared
            if f"SLIPWAY_{k}" in devstack.env
        }
        platform = await start_platform(
            devstack.kafka, databases, names, env | (extra_env or {}), devstack.kafka_passwords()
        )
        started.append(platform)
        return platform

    yield make
    for platform in started:
        platform.stop_all()
        await revoke_acls(platform)
        await delete_platform_topics(platform)
