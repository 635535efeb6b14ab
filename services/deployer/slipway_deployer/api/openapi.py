"""The deployer service's internal API as an OpenAPI document (``slipway_libs.openapi``)."""

from __future__ import annotations

from typing import Any

from slipway_deployer.api.answers import ANSWERS
from slipway_deployer.api.routes import build_router
from slipway_libs.openapi import NOTHING, fragment


def openapi_fragment() -> dict[str, Any]:
    router = build_router(NOTHING, {}, revisions=NOTHING, catalog_wait_s=1.0)
    return fragment("deployer", [router], ANSWERS)
