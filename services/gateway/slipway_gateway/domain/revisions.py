"""The catalog revisions each caller's writes reached, so that the caller's next request to the
deployer is served from a copy of the catalog at least that fresh (read-your-writes across
services, see ``slipway_libs.changes``).

A caller's script creates a service, then asks for a deploy: the catalog answers the create with
the project's new revision, the gateway remembers it for that principal, and adds it to the
caller's next deployer request on the project (the caller may also hand it back itself — the
CLI does — which is how it works across several gateways). Bounded: the principals least recently
seen are forgotten first (a forgotten revision only means the deployer does not wait for it).
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Mapping

PrincipalKey = uuid.UUID  # a user's or an API token's id

MAX_PRINCIPALS = 10_000
MAX_PROJECTS = 64  # per principal


class CallerRevisions:
    def __init__(
        self, *, max_principals: int = MAX_PRINCIPALS, max_projects: int = MAX_PROJECTS
    ) -> None:
        self._max_principals, self._max_projects = max_principals, max_projects
        self._seen: OrderedDict[PrincipalKey, OrderedDict[uuid.UUID, int]] = OrderedDict()

    def saw(self, principal: PrincipalKey, revisions: Mapping[uuid.UUID, int]) -> None:
        """The catalog answered that principal's write with these revisions."""
        if not revisions:
            return
        projects = self._seen.pop(principal, None) or OrderedDict()
        self._seen[principal] = projects  # now the most recent
        for project_id, revision in revisions.items():
            projects[project_id] = max(revision, projects.pop(project_id, 0))
        while len(projects) > self._max_projects:
            projects.popitem(last=False)
        while len(self._seen) > self._max_principals:
            self._seen.popitem(last=False)

    def wanted(
        self, principal: PrincipalKey, project_id: uuid.UUID, handed_back: Mapping[uuid.UUID, int]
    ) -> int:
        """The revision the principal's request on that project must be served at (0: any):
        the newest of what the gateway saw and what the caller handed back for that project."""
        projects = self._seen.get(principal)
        remembered = projects.get(project_id, 0) if projects is not None else 0
        return max(remembered, handed_back.get(project_id, 0))
