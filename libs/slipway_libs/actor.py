"""Who is acting, carried from the gateway to the internal APIs, and the internal-call guard.

The gateway authenticates the caller and forwards the result in ``X-Slipway-Actor`` (JSON); the
services use it for audit records and for rules that depend on the actor (only an owner may
grant ownership). Internal APIs are reachable only with ``X-Slipway-Internal-Token`` equal to
the shared ``SLIPWAY_INTERNAL_TOKEN`` when one is configured (the devstack configures one).
"""

from __future__ import annotations

import hmac
import json
import uuid
from typing import Literal

from fastapi import Request
from pydantic import BaseModel, ConfigDict, ValidationError

from slipway_libs.errors import BusinessError

ACTOR_HEADER = "x-slipway-actor"
INTERNAL_TOKEN_HEADER = "x-slipway-internal-token"  # noqa: S105 (a header name)


class Actor(BaseModel):
    model_config = ConfigDict(frozen=True)

    type: Literal["user", "api_token", "system"]
    id: str | None = None
    name: str | None = None
    user_id: uuid.UUID | None = None
    organization_role: str | None = None
    # the organization the gateway resolved for the request: services scope to it again
    organization_id: uuid.UUID | None = None
    origin: Literal["api", "cli", "git", "scheduler", "system"] = "api"

    def header(self) -> str:
        return self.model_dump_json(exclude_none=True)


SYSTEM = Actor(type="system", id="system", name="slipway", origin="system")


def actor_from(request: Request) -> Actor:
    """The acting principal of an internal request (``system`` when the header is absent)."""
    raw = request.headers.get(ACTOR_HEADER)
    if not raw:
        return SYSTEM
    try:
        return Actor.model_validate(json.loads(raw))
    except (ValueError, ValidationError) as exc:
        raise BusinessError("Malformed actor header.", code="BAD_ACTOR", status_code=400) from exc


def internal_guard(expected: str | None):  # type: ignore[no-untyped-def]
    """A FastAPI dependency refusing internal calls without the shared token."""

    async def guard(request: Request) -> None:
        if not expected:
            return
        given = request.headers.get(INTERNAL_TOKEN_HEADER, "")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise BusinessError("Internal API.", code="FORBIDDEN", status_code=403)

    return guard
