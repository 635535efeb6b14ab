"""Composition root of the gateway: stateless (no database, no relay, no consumer group).

It holds an in-memory access projection, followed from identity's events, so that deciding a
request needs no call to identity.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import structlog
from fastapi import APIRouter
from starlette.middleware import Middleware

from slipway_contracts.events.catalog import CLUSTER_TOPIC, PROJECT_TOPIC
from slipway_contracts.events.identity import ACCESS_TOPIC
from slipway_gateway.access.event_feed import DeploymentEventFeed
from slipway_gateway.access.follower import ProjectionFollower
from slipway_gateway.api.dispatch import RouteIndex, TableDispatch
from slipway_gateway.api.docs import docs_router
from slipway_gateway.api.health import upstream_checks
from slipway_gateway.api.log_sockets import log_socket_router
from slipway_gateway.api.org_events import OrganizationEvents, StreamLimits
from slipway_gateway.api.proxy import Upstreams
from slipway_gateway.api.routes import PREFIX, Gateway, TokenUsage
from slipway_gateway.api.streams import UpstreamStreams
from slipway_gateway.api.table import ROUTES
from slipway_gateway.config import GatewaySettings
from slipway_gateway.domain.catalog_index import CatalogIndex
from slipway_gateway.domain.projection import AccessProjection
from slipway_libs.actor import INTERNAL_TOKEN_HEADER
from slipway_libs.http import ReadinessCheck
from slipway_libs.service import Container, Resources, ServiceDefinition

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class GatewayParts:
    """The gateway's projections and upstream client, shared by its routes and tasks."""

    gateway: Gateway

    async def aclose(self) -> None:
        await self.gateway.upstreams.aclose()
        await self.gateway.streams.aclose()


GatewayContainer = Container[GatewaySettings, GatewayParts]


def _parts(resources: Resources[GatewaySettings]) -> GatewayParts:
    settings = resources.settings
    projection, index = AccessProjection(), CatalogIndex()
    streams = UpstreamStreams(
        urls=settings.upstreams(),
        internal_token=settings.internal_token_value(),
        max_per_principal=settings.follows_per_principal,
    )
    gateway = Gateway(
        projection=projection,
        index=index,
        upstreams=Upstreams(
            http=httpx.AsyncClient(timeout=settings.upstream_timeout_s),
            urls=settings.upstreams(),
            internal_token=settings.internal_token_value(),
            connections=settings.upstream_connections,
            timeout_s=settings.upstream_timeout_s,
        ),
        usage=TokenUsage(),
        streams=streams,
        events=OrganizationEvents(
            feed=DeploymentEventFeed(
                kafka=resources.kafka,
                index=index,
                topic_prefix=resources.platform.topic_prefix,
                per_organization=settings.events_per_organization,
                organizations=settings.events_organizations,
            ),
            projection=projection,
            index=index,
            streams=streams,
            limits=StreamLimits(
                heartbeat_s=settings.events_heartbeat_s, lifetime_s=settings.events_lifetime_s
            ),
        ),
    )
    return GatewayParts(gateway)


OPENAPI_URL = "/api/v1/openapi.json"
TITLE = "Slipway API"


def _routers(container: GatewayContainer) -> Sequence[APIRouter]:
    docs = docs_router(openapi_url=OPENAPI_URL, title=TITLE)
    gateway = container.parts.gateway
    return [gateway.router(), log_socket_router(gateway), docs]


def _inner_middleware(container: GatewayContainer) -> Sequence[Middleware]:
    """The table's routes dispatched ahead of FastAPI's router (``api.dispatch``)."""
    index = RouteIndex(ROUTES, PREFIX)
    return [Middleware(TableDispatch, gateway=container.parts.gateway, index=index)]


def _readiness(container: GatewayContainer) -> Mapping[str, ReadinessCheck]:
    gateway = container.parts.gateway
    checks = upstream_checks(gateway.upstreams.http, container.settings.upstreams())

    async def projection() -> dict[str, int]:
        if not gateway.projection.loaded:
            raise RuntimeError("access projection not loaded yet")
        return {"organizations": len(gateway.projection.organizations)}

    checks["access_projection"] = projection
    events = gateway.events

    async def event_feed() -> dict[str, str]:
        if events is None or not events.feed.started:
            raise RuntimeError("event feed not positioned yet")
        return {"position": events.feed.buffer.position.encode()}

    checks["event_feed"] = event_feed
    if "catalog" in container.settings.upstreams():

        async def index() -> dict[str, int]:
            if not gateway.index.loaded:
                raise RuntimeError("catalog index not loaded yet")
            return {"entries": len(gateway.index.entries)}

        checks["catalog_index"] = index
    return checks


def _tasks(container: GatewayContainer) -> Sequence[Callable[[], Coroutine[Any, Any, None]]]:
    gateway = container.parts.gateway
    settings = container.settings

    def follower(name: str, topics: list[str], url: str, load: Any, apply: Any) -> Any:
        return ProjectionFollower(
            name=name,
            topics=topics,
            snapshot_url=url,
            load=load,
            apply=apply,
            kafka=container.kafka,
            http=gateway.upstreams.http,
            internal_token=container.settings.internal_token_value(),
            topic_prefix=container.platform.topic_prefix,
        ).run

    followers = [
        follower(
            "access",
            [ACCESS_TOPIC],
            f"{settings.identity_url}/internal/v1/access-snapshot",
            gateway.projection.load_snapshot,
            gateway.projection.apply,
        )
    ]
    if "catalog" in settings.upstreams():
        followers.append(
            follower(
                "catalog",
                [CLUSTER_TOPIC, PROJECT_TOPIC],
                f"{settings.catalog_url}/internal/v1/index-snapshot",
                gateway.index.load_snapshot,
                gateway.index.apply,
            )
        )
    if gateway.events is not None:
        followers.append(gateway.events.feed.run)
    return [
        *followers,
        lambda: _flush_token_usage(gateway, settings.token_usage_flush_s),
        lambda: _prune_sessions(gateway),
    ]


async def _flush_token_usage(gateway: Gateway, every_s: float) -> None:
    upstreams = gateway.upstreams
    headers = {INTERNAL_TOKEN_HEADER: upstreams.internal_token} if upstreams.internal_token else {}
    while True:
        await asyncio.sleep(every_s)
        used = gateway.usage.take()
        if not used:
            continue
        body = {"used": {str(k): v.isoformat() for k, v in used.items()}}
        with contextlib.suppress(httpx.HTTPError):
            await upstreams.http.post(
                f"{upstreams.urls['identity']}/internal/v1/api-tokens/usage",
                json=body,
                headers=headers,
            )


async def _prune_sessions(gateway: Gateway) -> None:
    while True:
        await asyncio.sleep(60)
        gateway.projection.prune_sessions()


DEFINITION = ServiceDefinition(
    name="gateway",
    settings_cls=GatewaySettings,
    migrations=None,
    parts=_parts,
    routers=_routers,
    readiness=_readiness,
    inner_middleware=_inner_middleware,
    api_tasks=_tasks,
    app_options={
        "openapi_url": None,  # contracts/openapi.json, served by docs_router
        "docs_url": None,  # served by docs_router, without a CDN
        "title": TITLE,
        "version": "1",
    },
)
