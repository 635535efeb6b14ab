"""Read-your-writes across services: a request that names catalog revisions (the caller's last
writes, ``X-Slipway-Catalog-Revision``) is served from a projection at least that fresh.

The deployer plans a deployment on its own copy of the catalog, fed by events: a service created
a moment ago may not be there yet. Accepting the request then would plan without it (a deployment
that ends DEPLOYED with the new service never deployed), so the request waits, bounded, until the
projection has reached every revision it names, and is refused ``409 CATALOG_NOT_CAUGHT_UP``
(with ``Retry-After``) when it has not. Once accepted, what it named is in the projection for
good (revisions only grow), so planning, later, sees it.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Mapping
from typing import Protocol

from slipway_libs.errors import BusinessError


class Revisions(Protocol):
    async def reached(self, project_id: uuid.UUID, revision: int, *, timeout_s: float) -> bool: ...


class CatalogNotCaughtUp(BusinessError):
    status_code = 409
    code = "CATALOG_NOT_CAUGHT_UP"

    def __init__(self, project_id: uuid.UUID, revision: int, *, retry_after_s: float) -> None:
        super().__init__(
            "The deployer has not caught up with your latest catalog changes yet: send the"
            " request again in a moment.",
            details={"project_id": str(project_id), "revision": revision},
            headers={"Retry-After": str(max(1, math.ceil(retry_after_s)))},
        )


async def caught_up(
    revisions: Revisions, wanted: Mapping[uuid.UUID, int], *, wait_s: float
) -> None:
    """Returns once the projection has every revision ``wanted`` names (one deadline for all)."""
    deadline = time.monotonic() + wait_s
    for project_id, revision in wanted.items():
        remaining = max(0.0, deadline - time.monotonic())
        if not await revisions.reached(project_id, revision, timeout_s=remaining):
            raise CatalogNotCaughtUp(project_id, revision, retry_after_s=1)
