"""Composition root of the gateway: stateless, so no database, no relay, no consumers."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from slipway_gateway.api.health import upstream_checks
from slipway_gateway.config import GatewaySettings
from slipway_libs.http import ReadinessCheck
from slipway_libs.service import Container, ServiceDefinition


def _http_client(container: Container) -> httpx.AsyncClient:
    client = container.extras.get("http")
    if client is None:
        settings: GatewaySettings = container.settings
        client = httpx.AsyncClient(timeout=settings.upstream_timeout_s)
        container.extras["http"] = client
    return client


def _readiness(container: Container) -> Mapping[str, ReadinessCheck]:
    return upstream_checks(_http_client(container), container.settings.upstreams())


DEFINITION = ServiceDefinition(
    name="gateway",
    settings_cls=GatewaySettings,
    migrations=None,
    readiness=_readiness,
    app_options={
        "openapi_url": "/api/v1/openapi.json",
        "docs_url": "/docs",
        "title": "Slipway API",
        "version": "1",
    },
)
