"""The catalog service's internal API as an OpenAPI document (``slipway_libs.openapi``)."""

from __future__ import annotations

from typing import Any

from slipway_catalog.api.answers import ANSWERS
from slipway_catalog.api.routes import build_router
from slipway_libs.openapi import NOTHING, fragment


def openapi_fragment() -> dict[str, Any]:
    return fragment("catalog", [build_router(NOTHING, NOTHING, NOTHING, {})], ANSWERS)
