"""Who is acting, carried from the gateway to the internal APIs, and the internal-call guard.

The gateway authenticates the caller and forwards the result in ``X-Slipway-Actor`` (JSON); the
services use it for audit records and for rules that depend on the actor (only an owner may
grant ownership). Internal APIs are reachable only with an ``X-Slipway-Internal-Token`` of one
of the callers the service accepts: each calling service has a token of its own, and a service
knows only the SHA-256 of its callers' tokens (``SLIPWAY_<SERVICE>_INTERNAL_CALLERS``), so a
compromised service cannot present another's.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from typing import Literal

import structlog
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


InternalCallers = Mapping[str, str]  # caller name -> SHA-256 (hex) of the caller's token


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def internal_caller(callers: InternalCallers, token: str) -> str | None:
    """The name of the caller whose token this is, or None."""
    given = token_digest(token).encode()
    found = None
    for name, digest in callers.items():  # every digest compared: no early exit to time
        if hmac.compare_digest(given, digest.encode()):
            found = name
    return found


def internal_guard(callers: InternalCallers | None):  # type: ignore[no-untyped-def]
    """A FastAPI dependency refusing internal calls but from the accepted callers (none
    configured: open, for in-process tests); the caller's name is bound to the request's logs."""

    async def guard(request: Request) -> None:
        if not callers:
            return
        caller = internal_caller(callers, request.headers.get(INTERNAL_TOKEN_HEADER, ""))
        if caller is None:
            raise BusinessError("Internal API.", code="FORBIDDEN", status_code=403)
        request.state.internal_caller = caller
        structlog.contextvars.bind_contextvars(internal_caller=caller)

    return guard
