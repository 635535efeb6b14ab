"""The one policy point: may this principal do this action on this resource?

Built-in roles are decided by ``BUILTIN_MATRIX``, a plain table (action → roles allowed); the
tests hold it, route by route, to an expectation written apart from it, from the documented roles
(``services/gateway/tests/expected_permissions.py``). Custom roles are decided from their grants:
per project and environment mode a level (``no_access < viewer < deployer < manager``) plus
``is_admin``; per cluster ``viewer < env_creator < admin``. A custom role never reaches the
organization-level powers (members, roles, API tokens, webhooks, billing, settings). Creating an
environment by copying another (a clone: services, variables, secrets) also needs to read the
copy's source: ``manager`` on the new mode does not open a mode held at ``no_access``.

Answers: ``ALLOW``; ``FORBID`` (a member without the right: 403); ``HIDE`` (not a member, or
another tenant's resource: 404, so ids cannot be probed).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from enum import Enum, StrEnum


class Action(StrEnum):
    ORG_READ = "org:read"
    ORG_UPDATE = "org:update"
    ORG_DELETE = "org:delete"
    ORG_TRANSFER = "org:transfer"
    MEMBERS_READ = "members:read"
    MEMBERS_MANAGE = "members:manage"
    ROLES_READ = "roles:read"
    ROLES_MANAGE = "roles:manage"
    BILLING_MANAGE = "billing:manage"
    API_TOKENS_MANAGE = "api_tokens:manage"
    WEBHOOKS_MANAGE = "webhooks:manage"
    GIT_CREDENTIALS_MANAGE = "git_credentials:manage"
    AUDIT_READ = "audit:read"
    CLUSTER_READ = "cluster:read"
    CLUSTER_MANAGE = "cluster:manage"
    PROJECT_CREATE = "project:create"
    PROJECT_READ = "project:read"
    PROJECT_MANAGE = "project:manage"
    ENV_READ = "env:read"
    ENV_CREATE = "env:create"
    ENV_DEPLOY = "env:deploy"
    ENV_MANAGE = "env:manage"
    ENV_DELETE = "env:delete"


OWNER, ADMIN, DEVOPS, VIEWER, BILLING = "owner", "admin", "devops", "viewer", "billing"
BUILTIN_ROLES = (OWNER, ADMIN, DEVOPS, VIEWER, BILLING)
_ALL = frozenset(BUILTIN_ROLES)
_OA = frozenset({OWNER, ADMIN})
_OAD = frozenset({OWNER, ADMIN, DEVOPS})
_OADV = frozenset({OWNER, ADMIN, DEVOPS, VIEWER})

BUILTIN_MATRIX: dict[Action, frozenset[str]] = {
    Action.ORG_READ: _ALL,
    Action.ORG_UPDATE: _OA,
    Action.ORG_DELETE: frozenset({OWNER}),
    Action.ORG_TRANSFER: frozenset({OWNER}),
    Action.MEMBERS_READ: _ALL,
    Action.MEMBERS_MANAGE: _OA,
    Action.ROLES_READ: _ALL,
    Action.ROLES_MANAGE: _OA,
    Action.BILLING_MANAGE: frozenset({OWNER, ADMIN, BILLING}),
    Action.API_TOKENS_MANAGE: _OAD,
    Action.WEBHOOKS_MANAGE: _OAD,
    Action.GIT_CREDENTIALS_MANAGE: _OA,
    Action.AUDIT_READ: _OAD,
    Action.CLUSTER_READ: _ALL,
    Action.CLUSTER_MANAGE: _OAD,
    Action.PROJECT_CREATE: _OAD,
    Action.PROJECT_READ: _OADV,
    Action.PROJECT_MANAGE: _OAD,
    Action.ENV_READ: _OADV,
    Action.ENV_CREATE: _OAD,
    Action.ENV_DEPLOY: _OAD,
    Action.ENV_MANAGE: _OAD,
    Action.ENV_DELETE: _OAD,
}

PROJECT_LEVELS = ("no_access", "viewer", "deployer", "manager")
ENVIRONMENT_MODES = ("production", "staging", "development", "preview")
CLUSTER_LEVELS = ("none", "viewer", "env_creator", "admin")

# What a custom role needs, per action: (level in the environment mode, level on the cluster).
# Actions absent here are never allowed to a custom role.
_CUSTOM_NEEDS: dict[Action, tuple[str | None, str | None]] = {
    Action.ORG_READ: (None, None),
    Action.MEMBERS_READ: (None, None),
    Action.ROLES_READ: (None, None),
    Action.CLUSTER_READ: (None, "viewer"),
    Action.CLUSTER_MANAGE: (None, "admin"),
    Action.PROJECT_READ: ("viewer", None),
    Action.PROJECT_MANAGE: ("admin", None),
    Action.ENV_READ: ("viewer", None),
    Action.ENV_DEPLOY: ("deployer", "env_creator"),
    Action.ENV_MANAGE: ("manager", None),
    Action.ENV_CREATE: ("manager", "env_creator"),
    Action.ENV_DELETE: ("admin", None),
}


class Decision(Enum):
    ALLOW = "allow"
    FORBID = "forbid"
    HIDE = "hide"


@dataclass(frozen=True)
class ProjectGrant:
    is_admin: bool = False
    environments: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CustomGrants:
    projects: dict[uuid.UUID, ProjectGrant] = field(default_factory=dict)
    clusters: dict[uuid.UUID, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Resource:
    """What a request touches; only ``organization_id`` is always known."""

    organization_id: uuid.UUID
    project_id: uuid.UUID | None = None
    environment_mode: str | None = None
    cluster_id: uuid.UUID | None = None
    # a clone: the mode of the environment it copies (every built-in role that may create an
    # environment may read one, so only custom roles are decided on it)
    copied_mode: str | None = None


@dataclass(frozen=True)
class Standing:
    """The principal's standing in the resource's organization (None: not a member)."""

    role: str | None = None
    custom: CustomGrants | None = None


def decide(standing: Standing | None, action: Action, resource: Resource) -> Decision:
    if standing is None or (standing.role is None and standing.custom is None):
        return Decision.HIDE
    if standing.role is not None:
        return Decision.ALLOW if standing.role in BUILTIN_MATRIX[action] else Decision.FORBID
    assert standing.custom is not None
    return Decision.ALLOW if _custom_allows(standing.custom, action, resource) else Decision.FORBID


def _custom_allows(grants: CustomGrants, action: Action, resource: Resource) -> bool:
    needs = _CUSTOM_NEEDS.get(action)
    if needs is None:
        return False
    project_need, cluster_need = needs
    if project_need is not None and not _project_allows(grants, project_need, resource):
        return False
    if resource.copied_mode is not None and not _project_allows(
        grants, "viewer", replace(resource, environment_mode=resource.copied_mode)
    ):
        return False
    if cluster_need is None:
        return True
    if resource.cluster_id is None:
        # no particular cluster (a listing): any cluster granting enough will do
        return project_need is not None or any(
            _cluster_level(level) >= _cluster_level(cluster_need)
            for level in grants.clusters.values()
        )
    held = grants.clusters.get(resource.cluster_id, "none")
    return _cluster_level(held) >= _cluster_level(cluster_need)


def _cluster_level(level: str) -> int:
    return CLUSTER_LEVELS.index(level)


def _project_allows(grants: CustomGrants, need: str, resource: Resource) -> bool:
    if resource.project_id is None:
        return False
    grant = grants.projects.get(resource.project_id)
    if grant is None:
        return False
    if grant.is_admin:
        return True
    if need == "admin":
        return False
    if resource.environment_mode is None:
        # the project as a whole (its variables reach every environment): reading it needs
        # ``need`` on some mode, changing it on every mode — else a manager of development
        # could set a project variable that production's services receive
        if need == "viewer":
            return any(_at_least(held, need) for held in grant.environments.values())
        return all(
            _at_least(grant.environments.get(mode, "no_access"), need) for mode in ENVIRONMENT_MODES
        )
    return _at_least(grant.environments.get(resource.environment_mode, "no_access"), need)


def _at_least(held: str, need: str) -> bool:
    return PROJECT_LEVELS.index(held) >= PROJECT_LEVELS.index(need)
