"""The identity service's internal API as an OpenAPI document (``slipway_libs.openapi``)."""

from __future__ import annotations

from typing import Any

from slipway_identity.api.answers import ANSWERS
from slipway_identity.api.routes import build_router
from slipway_libs.openapi import NOTHING, fragment


def openapi_fragment() -> dict[str, Any]:
    return fragment("identity", [build_router(NOTHING, NOTHING, {})], ANSWERS)
