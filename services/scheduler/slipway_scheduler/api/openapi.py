"""The scheduler service's internal API as an OpenAPI document (``slipway_libs.openapi``)."""

from __future__ import annotations

from typing import Any

from slipway_libs.openapi import NOTHING, fragment
from slipway_scheduler.api.answers import ANSWERS
from slipway_scheduler.api.git_webhooks import build_git_webhook_router
from slipway_scheduler.api.routes import build_router
from slipway_scheduler.api.webhooks import build_webhook_router


def openapi_fragment() -> dict[str, Any]:
    routers = [
        build_router(NOTHING, {}),
        build_webhook_router(NOTHING, {}, NOTHING, NOTHING),
        build_git_webhook_router(NOTHING, {}, NOTHING),
    ]
    return fragment("scheduler", routers, ANSWERS)
