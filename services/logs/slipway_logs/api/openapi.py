"""The logs service's internal API as an OpenAPI document (``slipway_libs.openapi``)."""

from __future__ import annotations

from typing import Any

from slipway_libs.openapi import NOTHING, fragment
from slipway_logs.api.routes import build_router


def openapi_fragment() -> dict[str, Any]:
    return fragment("logs", [build_router(NOTHING, {})])
