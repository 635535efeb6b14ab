"""What would change in a project to make it what a ``slipway.yaml`` says (pure: no I/O).

- Only what the file writes is compared: a service's fields the file leaves out keep the
  platform's values (its defaults, or another tool's changes), and a list is compared item by
  item with the same rule. So a file and the export of what it made plan no change.
- A secret is compared by name only: its value is write-only, so an existing secret is kept; a
  missing one is created from the applying user's environment variable the file names.
- What the project holds and the file does not say is kept, and listed as such; ``prune``
  deletes it (services, variables and secrets; environments only when named by ``prune``).
- The changes are ordered so that each one's parent exists when it is applied: the project,
  environments, services, then variables; deletions last, children first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from slipway_cli.blueprint.state import Clusters, Environment, Project, Scope
from slipway_contracts.slipway_file import Scoped, SlipwayFile

Action = Literal["create", "update", "delete"]
What = Literal["project", "environment", "service", "variable", "secret"]


@dataclass(frozen=True)
class Change:
    action: Action
    what: What
    environment: str | None = None  # the names it sits under
    service: str | None = None
    key: str | None = None  # a variable's or a secret's
    body: dict[str, Any] = field(default_factory=dict)  # a creation's body, an update's patch
    target_id: str | None = None  # an update's or a deletion's resource
    version: int | None = None  # its version as read (If-Match)
    secret_from: str | None = None  # the environment variable holding a new secret's value

    @property
    def scope(self) -> str:
        if self.service is not None:
            return "service"
        return "environment" if self.environment is not None else "project"

    def describe(self) -> str:
        sign = {"create": "+", "update": "~", "delete": "-"}[self.action]
        where = "/".join(n for n in (self.environment, self.service) if n)
        if self.what in ("variable", "secret"):
            text = f"{self.what} {self.key} ({self.scope}{' ' + where if where else ''})"
            if self.secret_from:
                text += f" from ${self.secret_from}"
            elif self.action == "update":
                text += ": value changes"
        elif self.what == "project":
            text = f"project {self.body.get('name', '')}".rstrip()
        else:
            text = f"{self.what} {where}"
            if self.action == "create" and self.what == "service":
                text += f" ({self.body.get('kind')})"
            if self.action == "update":
                text += ": " + ", ".join(sorted(self.body))
        return f"{sign} {text}"


@dataclass(frozen=True)
class Plan:
    changes: list[Change]
    unchanged: int
    kept: list[str]  # what the project holds and the file does not say (kept without prune)

    def summary(self) -> str:
        counts = {a: sum(1 for c in self.changes if c.action == a) for a in _ACTIONS}
        return (
            f"{counts['create']} to create, {counts['update']} to change, "
            f"{counts['delete']} to delete; {self.unchanged} unchanged"
        )


_ACTIONS: tuple[Action, ...] = ("create", "update", "delete")


class PlanError(ValueError):
    """The file cannot be applied as it is (an unknown cluster ...)."""


def differs(wanted: Any, current: Any) -> bool:
    """Whether ``current`` lacks what ``wanted`` says (only the keys ``wanted`` writes)."""
    if isinstance(wanted, Mapping):
        if not isinstance(current, Mapping):
            return True
        return any(differs(v, current.get(k)) for k, v in wanted.items())
    if isinstance(wanted, list):
        if not isinstance(current, list) or len(wanted) != len(current):
            return True
        return any(differs(w, c) for w, c in zip(wanted, current, strict=True))
    return bool(wanted != current)


def plan(
    wanted: SlipwayFile, current: Project | None, clusters: Clusters, *, prune: bool = False
) -> Plan:
    builder = _Builder(prune=prune)
    if current is None:
        builder.add(Change("create", "project", body={"name": wanted.project}))
    builder.variables(wanted, current, environment=None, service=None)
    for name, env in wanted.environments.items():
        cluster = clusters.resolve(env.cluster)
        if cluster is None:
            raise PlanError(f"environment {name}: no cluster named {env.cluster!r}")
        existing = current.environments.get(name) if current else None
        builder.environment(name, env.mode, cluster, existing)
        for service_name, service in env.services.items():
            spec = service.model_dump(exclude={"variables", "secrets"}, exclude_unset=True)
            spec["kind"] = service.kind
            had = existing.services.get(service_name) if existing else None
            builder.service(name, service_name, spec, had)
            builder.variables(service, had, environment=name, service=service_name)
        builder.variables(env, existing, environment=name, service=None)
        if existing is not None:
            for gone in sorted(set(existing.services) - set(env.services)):
                builder.absent("service", existing.services[gone], name, gone)
    if current is not None:
        for gone in sorted(set(current.environments) - set(wanted.environments)):
            builder.kept.append(f"environment {gone}")
    return builder.result()


@dataclass
class _Builder:
    prune: bool
    changes: list[Change] = field(default_factory=list)
    deletions: list[Change] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    unchanged: int = 0

    def add(self, change: Change) -> None:
        self.changes.append(change)

    def result(self) -> Plan:
        order = {"project": 0, "environment": 1, "service": 2, "variable": 3, "secret": 3}
        creates = sorted(self.changes, key=lambda c: order[c.what])  # stable within a kind
        deletes = sorted(self.deletions, key=lambda c: -order[c.what])
        return Plan(creates + deletes, self.unchanged, self.kept)

    def environment(self, name: str, mode: str, cluster: str, had: Environment | None) -> None:
        if had is None:
            body = {"name": name, "mode": mode, "cluster_id": cluster}
            self.add(Change("create", "environment", environment=name, body=body))
            return
        if had.cluster_id != cluster:
            raise PlanError(f"environment {name}: its cluster cannot change (clone it instead)")
        if had.mode != mode:
            self.add(
                Change(
                    "update",
                    "environment",
                    environment=name,
                    body={"mode": mode},
                    target_id=had.id,
                    version=had.version,
                )
            )
        else:
            self.unchanged += 1

    def service(self, environment: str, name: str, spec: dict[str, Any], had: Any | None) -> None:
        if had is None:
            body = {"name": name, **spec}
            self.add(Change("create", "service", environment, name, body=body))
            return
        if had.kind != spec["kind"]:
            raise PlanError(f"service {environment}/{name}: its kind cannot change")
        patch = {k: v for k, v in spec.items() if k != "kind" and differs(v, had.spec.get(k))}
        if not patch:
            self.unchanged += 1
            return
        self.add(
            Change(
                "update",
                "service",
                environment,
                name,
                body=patch,
                target_id=had.id,
                version=had.version,
            )
        )

    def variables(
        self, wanted: Scoped, had: Scope | None, *, environment: str | None, service: str | None
    ) -> None:
        existing = had.variables if had else {}
        for key, value in wanted.variables.items():
            now = existing.get(key)
            if now is None or now.is_secret:
                if now is not None:  # a secret becomes plain: replaced
                    self._delete("secret", now.id, now.version, environment, service, key)
                body = {"key": key, "value": value, "is_secret": False}
                self.add(Change("create", "variable", environment, service, key, body))
            elif now.value != value:
                patch = {"value": value}
                self.add(
                    Change(
                        "update", "variable", environment, service, key, patch, now.id, now.version
                    )
                )
            else:
                self.unchanged += 1
        for key, ref in wanted.secrets.items():
            now = existing.get(key)
            if now is not None and now.is_secret:
                self.unchanged += 1  # write-only: its value is not compared
                continue
            if now is not None:  # a plain variable becomes a secret: replaced
                self._delete("variable", now.id, now.version, environment, service, key)
            body = {"key": key, "is_secret": True}
            self.add(
                Change(
                    "create",
                    "secret",
                    environment,
                    service,
                    key,
                    body,
                    secret_from=ref.from_env,
                )
            )
        said = set(wanted.variables) | set(wanted.secrets)
        for key in sorted(set(existing) - said):
            gone = existing[key]
            what: What = "secret" if gone.is_secret else "variable"
            if self.prune:
                self._delete(what, gone.id, gone.version, environment, service, key)
            else:
                where = "/".join(n for n in (environment, service) if n) or "project"
                self.kept.append(f"{what} {key} ({where})")

    def absent(self, what: What, had: Scope, environment: str, name: str) -> None:
        if self.prune:
            self.deletions.append(
                Change("delete", what, environment, name, target_id=had.id, version=had.version)
            )
        else:
            self.kept.append(f"{what} {environment}/{name}")

    def _delete(
        self,
        what: What,
        target: str,
        version: int | None,
        environment: str | None,
        service: str | None,
        key: str,
    ) -> None:
        # before the creation that replaces it: the key must be free first
        self.changes.append(
            Change("delete", what, environment, service, key, target_id=target, version=version)
        )
