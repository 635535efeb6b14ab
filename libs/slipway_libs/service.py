"""Running one Slipway service: the commands ``migrate | api | worker | relay | run``.

Each service declares a ``ServiceDefinition`` (its name, settings, migrations, routers,
consumers, topics) and its ``__main__`` hands the command line to ``main``. The ``Container`` is
the composition root's product: everything a process uses is built here, once, at start-up —
never at import time — and closed on the way out.

- ``migrate``: apply the migrations and exit.
- ``api``: the HTTP API (uvicorn).
- ``worker``: the Kafka consumers.
- ``relay``: the outbox relay.
- ``run``: api + worker + relay in one process (what ``make up`` runs; scale out with the others).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import signal
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Generic, TypeVar

import asyncpg
import structlog
import uvicorn
from fastapi import APIRouter, FastAPI
from starlette.middleware import Middleware

from slipway_contracts import TOPICS, TopicSpec
from slipway_libs import db, migrations
from slipway_libs.bus import ConsumerSpec, consuming, ensure_topics
from slipway_libs.http import ReadinessCheck, create_app
from slipway_libs.kafka_access import may_create
from slipway_libs.lifetime import die_with_parent
from slipway_libs.logging import configure_logging
from slipway_libs.relay import OutboxRelay, producer_factory
from slipway_libs.settings import (
    DatabaseServiceSettings,
    KafkaConnection,
    PlatformSettings,
    ServiceSettings,
    kafka_connection,
    load,
)
from slipway_libs.telemetry import configure_tracing

log = structlog.get_logger(__name__)

COMMANDS = ("migrate", "api", "worker", "relay", "run")
ApiTask = Callable[[], Coroutine[Any, Any, None]]
SettingsT = TypeVar("SettingsT", bound=ServiceSettings)
PartsT = TypeVar("PartsT")


@dataclass(frozen=True, kw_only=True)
class Resources(Generic[SettingsT]):
    """What the process opened for a service before its own parts are built: its settings, the
    platform's, and its database pool (none for a service without a database, or for
    ``migrate``)."""

    name: str
    settings: SettingsT
    platform: PlatformSettings
    pool: asyncpg.Pool | None = None

    def require_pool(self) -> asyncpg.Pool:
        if self.pool is None:
            raise RuntimeError(f"{self.name} has no database")
        return self.pool

    def database_settings(self) -> DatabaseServiceSettings:
        """The settings of a service that owns a database (its URL is then required)."""
        if not isinstance(self.settings, DatabaseServiceSettings):
            raise RuntimeError(f"{self.name} has no database")
        return self.settings

    @property
    def kafka(self) -> KafkaConnection:
        """The brokers, and this service's own Kafka principal."""
        return kafka_connection(self.platform, self.settings)


@dataclass(frozen=True, kw_only=True)
class Container(Resources[SettingsT], Generic[SettingsT, PartsT]):
    """What one process of a service has to work with: the resources plus the service's own
    ``parts`` (e.g. its use cases' dependencies), built once by ``definition.parts`` when the
    process starts. Parts that hold connections close them in an ``aclose()`` of theirs."""

    definition: ServiceDefinition[SettingsT, PartsT]
    parts: PartsT


def no_parts(resources: Resources[Any]) -> None:
    """The ``parts`` of a service that needs nothing beyond its resources."""
    return None


@dataclass(frozen=True, kw_only=True)
class ServiceDefinition(Generic[SettingsT, PartsT]):
    name: str
    settings_cls: type[SettingsT]
    migrations: Path | None
    # what the routes, consumers and tasks share, built once per process (``Container.parts``)
    parts: Callable[[Resources[SettingsT]], PartsT]
    routers: Callable[[Container[SettingsT, PartsT]], Sequence[APIRouter]] = lambda _: ()
    consumers: Callable[[Container[SettingsT, PartsT]], Sequence[ConsumerSpec]] = lambda _: ()
    readiness: Callable[[Container[SettingsT, PartsT]], Mapping[str, ReadinessCheck]] = lambda _: {}
    topics: Sequence[TopicSpec] = TOPICS
    # long-running coroutines that live beside the HTTP API (e.g. a projection follower)
    api_tasks: Callable[[Container[SettingsT, PartsT]], Sequence[ApiTask]] = lambda _: ()
    # long-running coroutines that live beside the consumers (e.g. a build executor)
    worker_tasks: Callable[[Container[SettingsT, PartsT]], Sequence[ApiTask]] = lambda _: ()
    app_options: Mapping[str, Any] = field(default_factory=dict)
    # ASGI layers ahead of the router, inside the service's own middlewares (``create_app``)
    inner_middleware: Callable[[Container[SettingsT, PartsT]], Sequence[Middleware]] = lambda _: ()
    # operator commands beside migrate/api/worker/relay/run: name -> (container, args)
    commands: Mapping[
        str, Callable[[Container[SettingsT, PartsT], list[str]], Coroutine[Any, Any, None]]
    ] = field(default_factory=dict)

    @property
    def has_database(self) -> bool:
        return self.migrations is not None


def build_app(container: Container[Any, Any]) -> FastAPI:
    checks: dict[str, ReadinessCheck] = {}
    if container.pool is not None:
        pool = container.pool
        checks["database"] = lambda: db.check(pool)
    kafka = container.kafka
    checks["kafka"] = lambda: kafka_check(kafka)
    checks.update(container.definition.readiness(container))
    return create_app(
        service=container.definition.name,
        routers=container.definition.routers(container),
        readiness=checks,
        inner=container.definition.inner_middleware(container),
        instance=container.settings.instance_id,
        **container.definition.app_options,
    )


async def kafka_check(kafka: KafkaConnection) -> dict[str, Any]:
    """Readiness: a metadata round trip to the broker."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**kafka.options(), request_timeout_ms=2000)
    await admin.start()
    try:
        cluster = await admin.describe_cluster()
        return {"brokers": len(cluster.get("brokers", []))}
    finally:
        await admin.close()


@contextlib.asynccontextmanager
async def open_resources(
    definition: ServiceDefinition[SettingsT, PartsT], *, with_pool: bool = True
) -> AsyncIterator[Resources[SettingsT]]:
    settings: SettingsT = load(definition.settings_cls)
    platform: PlatformSettings = load(PlatformSettings)
    configure_logging(definition.name, level=platform.log_level, json=platform.log_json)
    configure_tracing(definition.name, otlp_endpoint=platform.otlp_endpoint)
    resources = Resources(name=definition.name, settings=settings, platform=platform)
    if with_pool and definition.has_database:
        database = resources.database_settings()
        resources = replace(
            resources,
            pool=await db.create_pool(
                database.database_url, min_size=settings.db_pool_min, max_size=settings.db_pool_max
            ),
        )
    try:
        yield resources
    finally:
        if resources.pool is not None:
            await resources.pool.close()


@contextlib.asynccontextmanager
async def open_container(
    definition: ServiceDefinition[SettingsT, PartsT],
) -> AsyncIterator[Container[SettingsT, PartsT]]:
    async with open_resources(definition) as resources:
        parts = definition.parts(resources)
        try:
            yield Container(
                name=resources.name,
                settings=resources.settings,
                platform=resources.platform,
                pool=resources.pool,
                definition=definition,
                parts=parts,
            )
        finally:
            closer = getattr(parts, "aclose", None)
            if closer is not None:
                await closer()


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the process's stop event rules."""

    @contextlib.contextmanager
    def capture_signals(self) -> Any:
        yield


# An idle keep-alive connection is closed by the server only well after its clients would stop
# reusing it (httpx pools drop idle connections after 5 s; browsers and proxies hold them up to
# about a minute). With uvicorn's 5 s on both sides, a request sent on a connection the server
# was closing at that moment failed with a bare ReadError (seen under load, client → gateway),
# and on the gateway → service hop it would surface as 503 UPSTREAM_UNAVAILABLE.
KEEP_ALIVE_S = 75


async def serve_api(container: Container[Any, Any], stop: asyncio.Event) -> None:
    settings = container.settings
    config = uvicorn.Config(
        build_app(container),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_keep_alive=KEEP_ALIVE_S,
    )
    server = _Server(config)
    helpers: list[asyncio.Task[None]] = [
        asyncio.create_task(run()) for run in container.definition.api_tasks(container)
    ]
    task = asyncio.create_task(server.serve())
    try:
        await _until(stop, task, *helpers)
        server.should_exit = True
        await task
    finally:
        for helper in helpers:
            helper.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)


async def serve_relay(container: Container[Any, Any], stop: asyncio.Event) -> None:
    settings = container.database_settings()
    relay = OutboxRelay(
        dsn=settings.database_url,
        producer=producer_factory(container.kafka, client_id=f"{container.definition.name}-relay"),
        batch_size=settings.relay_batch_size,
        poll_interval_s=settings.relay_poll_interval_s,
        topic_prefix=container.platform.topic_prefix,
    )
    task = asyncio.create_task(relay.run())
    await _until(stop, task)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def serve_worker(container: Container[Any, Any], stop: asyncio.Event) -> None:
    helpers: list[asyncio.Task[None]] = [
        asyncio.create_task(run()) for run in container.definition.worker_tasks(container)
    ]
    consumer = asyncio.create_task(_consume(container, stop))
    try:
        await _until(stop, consumer, *helpers)
        await consumer
    finally:
        for task in (consumer, *helpers):
            task.cancel()
        await asyncio.gather(consumer, *helpers, return_exceptions=True)


async def _consume(container: Container[Any, Any], stop: asyncio.Event) -> None:
    specs = container.definition.consumers(container)
    if not specs:
        await stop.wait()
        return
    settings = container.settings
    async with consuming(
        container.kafka,
        container.require_pool(),
        specs,
        client_id=f"{container.definition.name}-worker",
        max_retries=settings.consumer_max_retries,
        backoff_s=settings.consumer_backoff_s,
        batch_size=settings.consumer_batch_size,
        topic_prefix=container.platform.topic_prefix,
    ):
        await stop.wait()


async def _until(stop: asyncio.Event, main: asyncio.Task[Any], *helpers: asyncio.Task[Any]) -> None:
    """Until a stop is requested or ``main`` ends; a helper may end, but a crash of any of them
    is raised: the process then stops (its supervisor restarts it) rather than living on with a
    part silently dead, e.g. a consumer queueing builds that no executor will ever start."""
    waiter = asyncio.create_task(stop.wait())
    pending: set[asyncio.Task[Any]] = {waiter, main, *helpers}
    try:
        while True:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done - {waiter}:
                task.result()
            if waiter in done or main in done:
                return
    finally:
        waiter.cancel()


def _own_topics(container: Container[Any, Any]) -> list[TopicSpec]:
    """The topics this process ensures at start: all of them on an unauthenticated cluster, else
    those its principal may create (the installation's admin creates the others beforehand:
    ``slipway_libs.kafka_access``)."""
    name, prefix = container.definition.name, container.platform.topic_prefix
    own = container.kafka.username is None
    return [
        replace(t, name=prefix + t.name)
        for t in container.definition.topics
        if own or may_create(name, t.name)
    ]


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


async def run_command(definition: ServiceDefinition[Any, Any], command: str) -> None:
    if command == "migrate":
        async with open_resources(definition, with_pool=False) as resources:
            if definition.migrations is not None:
                applied = await migrations.migrate(
                    resources.database_settings().database_url,
                    definition.name,
                    definition.migrations,
                )
                log.info("migrate.done", applied=len(applied))
        return
    stop = asyncio.Event()
    _stop_on_signals(stop)
    async with open_container(definition) as container:
        await ensure_topics(container.kafka, _own_topics(container))
        serving = {
            "api": [serve_api],
            "worker": [serve_worker],
            "relay": [serve_relay] if definition.has_database else [],
            "run": [serve_api, serve_worker] + ([serve_relay] if definition.has_database else []),
        }[command]
        log.info("service.starting", command=command, parts=[p.__name__ for p in serving])
        gc.freeze()  # start-up objects live forever: keep them out of the collector's way
        tasks = [asyncio.create_task(part(container, stop)) for part in serving]
        try:
            await asyncio.gather(*tasks)
        finally:
            stop.set()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def run_operator_command(
    definition: ServiceDefinition[Any, Any], command: str, args: list[str]
) -> None:
    """A one-off operator command of the service (e.g. identity's ``rotate-keys``)."""
    async with open_container(definition) as container:
        await definition.commands[command](container, args)


def main(definition: ServiceDefinition[Any, Any], argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog=f"python -m slipway_{definition.name}")
    parser.add_argument("command", choices=[*COMMANDS, *definition.commands])
    parser.add_argument("args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    die_with_parent()
    if args.command in definition.commands:
        asyncio.run(run_operator_command(definition, args.command, args.args))
    else:
        asyncio.run(run_command(definition, args.command))
