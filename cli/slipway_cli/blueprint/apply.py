"""Making a plan so, one change after the other, through the public API.

Each creation is a POST the client sends with an ``Idempotency-Key`` (a retry after a timeout
creates nothing twice); each update and deletion carries ``If-Match`` with the version the plan
read, so a change someone made since is not overwritten: the API answers 412 and the apply
stops there (plan again). Secrets' values are read from the environment before anything is
changed: a missing one changes nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from slipway_cli.blueprint.plan import Change, Plan
from slipway_cli.blueprint.state import Project
from slipway_cli.client import call
from slipway_cli.inputs import UsageError


@dataclass
class _Ids:
    """The ids of what the changes touch, known or created on the way."""

    project: str | None
    environments: dict[str, str] = field(default_factory=dict)
    services: dict[tuple[str, str], str] = field(default_factory=dict)

    @classmethod
    def of(cls, project: Project | None) -> _Ids:
        ids = cls(project.id if project else None)
        for name, env in (project.environments if project else {}).items():
            ids.environments[name] = env.id
            for service_name, service in env.services.items():
                ids.services[(name, service_name)] = service.id
        return ids

    def parent(self, change: Change) -> str:
        if change.service is not None:
            return self.services[(str(change.environment), change.service)]
        if change.environment is not None:
            return self.environments[change.environment]
        assert self.project is not None
        return self.project


def secret_values(plan: Plan, environ: dict[str, str] | None = None) -> dict[str, str]:
    """Each new secret's value, from the variable the file names (all there, or none used)."""
    environ = dict(os.environ) if environ is None else environ
    missing = sorted({c.secret_from for c in plan.changes if c.secret_from} - set(environ))
    if missing:
        names = ", ".join(f"${m}" for m in missing)
        raise UsageError(f"the secrets' values are read from {names}: not set, nothing applied")
    return {c.secret_from: environ[c.secret_from] for c in plan.changes if c.secret_from}


def apply(
    plan: Plan,
    project: Project | None,
    *,
    org: str,
    say: Callable[[str], None],
    environ: dict[str, str] | None = None,
) -> None:
    values = secret_values(plan, environ)
    ids = _Ids.of(project)
    for change in plan.changes:
        _one(change, ids, org, values)
        say(change.describe())


def _one(change: Change, ids: _Ids, org: str, values: dict[str, str]) -> None:
    if change.action == "delete":
        call("DELETE", _path(change), headers=_if_match(change))
    elif change.action == "update":
        call("PATCH", _path(change), change.body, headers=_if_match(change))
    elif change.what == "project":
        ids.project = str(call("POST", f"/organizations/{org}/projects", change.body)["id"])
    elif change.what == "environment":
        made = call("POST", f"/projects/{ids.project}/environments", change.body)
        ids.environments[str(change.environment)] = str(made["id"])
    elif change.what == "service":
        env = ids.environments[str(change.environment)]
        made = call("POST", f"/environments/{env}/services", change.body)
        ids.services[(str(change.environment), str(change.service))] = str(made["id"])
    else:
        body: dict[str, Any] = {
            **change.body,
            "scope": change.scope,
            "parent_id": ids.parent(change),
        }
        if change.secret_from:
            body["value"] = values[change.secret_from]
        call("POST", "/variables", body)


def _path(change: Change) -> str:
    kind = {"environment": "environments", "service": "services"}.get(change.what, "variables")
    return f"/{kind}/{change.target_id}"


def _if_match(change: Change) -> dict[str, str]:
    return {"if-match": f'"{change.version}"'} if change.version is not None else {}
