"""Read-your-writes across services: the state changes a request made, handed back with it.

A service answers a change with the changed state (the same payloads its events carry, see
``outbox.publish(..., announce=True)``), in the ``X-Slipway-Changes`` header; the gateway that
forwarded the request applies them to its projections at once, instead of waiting for the
events. Other gateways converge through the events as usual. A list too large for a header is
left to the events.

Another service's copy (the deployer's projection of the catalog) cannot be handed the changes:
for it the answer carries a causal token instead, ``X-Slipway-Catalog-Revision`` (below), which
the caller's next request to that service names and the service waits for.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

CHANGES_HEADER = "x-slipway-changes"
MAX_HEADER_BYTES = 16_000

# set (to an empty list) by ``http.ChangesRoute`` for the duration of one request
collected: ContextVar[list[dict[str, Any]] | None] = ContextVar("slipway_changes", default=None)


def announce(event_type: str, data: dict[str, Any]) -> None:
    changes = collected.get()
    if changes is not None:
        changes.append({"type": event_type, "data": data})


# --- causal tokens: how fresh a reader's copy of the catalog must be -----------------------------
#
# Announced changes reach only the gateway that forwarded the write. Another service's copy of
# the catalog (the deployer's projection) learns them from the events, later: a caller that
# writes to the catalog and then asks the deployer hands back the revision its write answered,
# and the deployer serves it from a projection at least that fresh. A revision is per project
# (the catalog's events are ordered per project), so the token is ``<project id>:<n>`` — a
# comma-separated list when it names more than one project.

REVISION_HEADER = "x-slipway-catalog-revision"
MAX_REVISIONS = 16  # a token naming more projects than this is cut: it only shortens waits

# set (to an empty dict) by ``http.ChangesRoute`` for the duration of one request
reached: ContextVar[dict[uuid.UUID, int] | None] = ContextVar("slipway_revisions", default=None)


def note_revision(project_id: uuid.UUID, revision: int) -> None:
    """The request's write moved that project to ``revision`` (answered with the request)."""
    noted = reached.get()
    if noted is not None:
        noted[project_id] = max(revision, noted.get(project_id, 0))


def format_revisions(revisions: Mapping[uuid.UUID, int]) -> str:
    return ",".join(f"{project}:{n}" for project, n in revisions.items())


def parse_revisions(header: str | None) -> dict[uuid.UUID, int]:
    """A token as a caller sent it; what does not parse is ignored (a token only makes a reader
    wait for freshness, it never grants anything)."""
    revisions: dict[uuid.UUID, int] = {}
    for item in (header or "").split(",")[:MAX_REVISIONS]:
        project, _, number = item.strip().partition(":")
        try:
            project_id, revision = uuid.UUID(project), int(number)
        except ValueError:
            continue
        if 0 < revision < 2**63:
            revisions[project_id] = max(revision, revisions.get(project_id, 0))
    return revisions
