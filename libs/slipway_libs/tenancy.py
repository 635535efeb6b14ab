"""The organization a request acts in, enforced again inside each service (defense in depth).

The gateway authorizes every request and resolves the organization it touches; it forwards that
organization in the actor header. A service does not take the gateway's word for the rest:
``tenant_scope()`` (a router dependency) refuses an org-scoped path naming another organization,
and binds the organization for the request, so that ``slipway_libs.db.transaction`` sets it as
``slipway.organization_id`` in every transaction the request opens. The service's tables carry
row-level security policies on that setting (the SQL function ``tenant_visible``, see
the catalog's and the deployer's migrations): a row of another
organization is invisible to reads and refused to writes, whatever a query forgets — so a
gateway bug that let a request name another tenant's id finds nothing (404).

Requests of the platform itself (no actor header: consumers, the worker, the gateway's
snapshots) bind no organization and see every row.
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar

from fastapi import Request

from slipway_libs.actor import actor_from
from slipway_libs.errors import BusinessError

current_organization: ContextVar[uuid.UUID | None] = ContextVar(
    "current_organization", default=None
)

GUC = "slipway.organization_id"


def tenant_scope(*, required: bool = True):  # type: ignore[no-untyped-def]
    """A router dependency: binds the acting organization of a user's or token's request and
    refuses a path naming another one. ``required``: every such request must name one (the
    catalog, the deployer); identity also serves users outside any organization (``/me``)."""

    async def scope(request: Request) -> None:
        actor = actor_from(request)
        organization = None if actor.type == "system" else actor.organization_id
        if organization is None and actor.type != "system" and required:
            # the gateway resolves an organization for every route that reaches a service
            # this way: a request without one is a bug upstream, and must not see every tenant
            raise BusinessError(
                "The request names no organization.",
                code="ORGANIZATION_REQUIRED",
                status_code=400,
            )
        named = request.path_params.get("org_id")
        if actor.type != "system" and named is not None and str(named) != str(organization):
            raise BusinessError(
                "No such organization.", code="ORGANIZATION_NOT_FOUND", status_code=404
            )
        current_organization.set(organization)

    return scope
