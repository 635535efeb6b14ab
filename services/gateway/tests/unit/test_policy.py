"""The policy point, exhaustively: every action for every built-in role (from the table) and
custom-role grants per environment mode and cluster."""

from __future__ import annotations

import itertools
import uuid

import pytest

from slipway_gateway.domain.policy import (
    BUILTIN_MATRIX,
    BUILTIN_ROLES,
    CLUSTER_LEVELS,
    PROJECT_LEVELS,
    Action,
    CustomGrants,
    Decision,
    ProjectGrant,
    Resource,
    Standing,
    decide,
)

ORG, PROJECT, OTHER_PROJECT, CLUSTER = (uuid.uuid4() for _ in range(4))
MODES = ("production", "staging", "development", "preview")
ORG_ONLY = {
    Action.ORG_UPDATE,
    Action.ORG_DELETE,
    Action.ORG_TRANSFER,
    Action.MEMBERS_MANAGE,
    Action.ROLES_MANAGE,
    Action.BILLING_MANAGE,
    Action.API_TOKENS_MANAGE,
    Action.WEBHOOKS_MANAGE,
    Action.AUDIT_READ,
    Action.PROJECT_CREATE,
}


def test_every_action_is_in_the_table() -> None:
    assert set(BUILTIN_MATRIX) == set(Action)


@pytest.mark.parametrize(("role", "action"), list(itertools.product(BUILTIN_ROLES, Action)))
def test_builtin_roles_follow_the_table(role: str, action: Action) -> None:
    expected = Decision.ALLOW if role in BUILTIN_MATRIX[action] else Decision.FORBID
    assert decide(Standing(role=role), action, Resource(ORG, PROJECT, "production")) is expected


def test_issue_matrix_spot_checks() -> None:
    allowed = {a: sorted(r) for a, r in BUILTIN_MATRIX.items()}
    assert allowed[Action.ORG_READ] == sorted(BUILTIN_ROLES)
    assert allowed[Action.ORG_UPDATE] == ["admin", "owner"]
    assert allowed[Action.ORG_DELETE] == allowed[Action.ORG_TRANSFER] == ["owner"]
    assert allowed[Action.MEMBERS_MANAGE] == allowed[Action.ROLES_MANAGE] == ["admin", "owner"]
    for action in (
        Action.CLUSTER_MANAGE,
        Action.API_TOKENS_MANAGE,
        Action.WEBHOOKS_MANAGE,
        Action.PROJECT_CREATE,
        Action.ENV_DEPLOY,
        Action.ENV_MANAGE,
    ):
        assert allowed[action] == ["admin", "devops", "owner"]
    assert allowed[Action.ENV_READ] == ["admin", "devops", "owner", "viewer"]


@pytest.mark.parametrize("action", list(Action))
def test_strangers_are_hidden_not_forbidden(action: Action) -> None:
    assert decide(None, action, Resource(ORG)) is Decision.HIDE


@pytest.mark.parametrize("action", sorted(ORG_ONLY))
def test_a_custom_role_never_reaches_organization_powers(action: Action) -> None:
    everything = CustomGrants(
        projects={
            PROJECT: ProjectGrant(is_admin=True, environments=dict.fromkeys(MODES, "manager"))
        },
        clusters={CLUSTER: "admin"},
    )
    resource = Resource(ORG, PROJECT, "production", CLUSTER)
    assert decide(Standing(custom=everything), action, resource) is Decision.FORBID


NEEDS = {
    Action.ENV_READ: "viewer",
    Action.ENV_DEPLOY: "deployer",
    Action.ENV_MANAGE: "manager",
    Action.ENV_CREATE: "manager",
}


@pytest.mark.parametrize(
    ("level", "mode", "action"), list(itertools.product(PROJECT_LEVELS, MODES, sorted(NEEDS)))
)
def test_custom_role_per_environment_mode(level: str, mode: str, action: Action) -> None:
    """The grant on ``mode`` decides for ``mode`` only; other modes stay closed."""
    grants = CustomGrants(
        projects={PROJECT: ProjectGrant(environments={mode: level})},
        clusters={CLUSTER: "env_creator"},
    )
    for target in MODES:
        resource = Resource(ORG, PROJECT, target, CLUSTER)
        held = level if target == mode else "no_access"
        ok = PROJECT_LEVELS.index(held) >= PROJECT_LEVELS.index(NEEDS[action])
        assert decide(Standing(custom=grants), action, resource) is (
            Decision.ALLOW if ok else Decision.FORBID
        ), (target, held)
    other = Resource(ORG, OTHER_PROJECT, mode, CLUSTER)
    assert decide(Standing(custom=grants), action, other) is Decision.FORBID


@pytest.mark.parametrize(
    ("cluster_level", "action"),
    list(
        itertools.product(
            CLUSTER_LEVELS,
            [Action.ENV_DEPLOY, Action.ENV_CREATE, Action.CLUSTER_READ, Action.CLUSTER_MANAGE],
        )
    ),
)
def test_custom_role_cluster_levels(cluster_level: str, action: Action) -> None:
    clusters = {} if cluster_level == "none" else {CLUSTER: cluster_level}
    grants = CustomGrants(
        projects={PROJECT: ProjectGrant(environments={"staging": "manager"})}, clusters=clusters
    )
    need = {
        Action.ENV_DEPLOY: "env_creator",
        Action.ENV_CREATE: "env_creator",
        Action.CLUSTER_READ: "viewer",
        Action.CLUSTER_MANAGE: "admin",
    }[action]
    ok = CLUSTER_LEVELS.index(cluster_level) >= CLUSTER_LEVELS.index(need)
    resource = Resource(ORG, PROJECT, "staging", CLUSTER)
    assert decide(Standing(custom=grants), action, resource) is (
        Decision.ALLOW if ok else Decision.FORBID
    )


def test_project_admin_can_delete_environments_and_manage_the_project() -> None:
    admin = CustomGrants(projects={PROJECT: ProjectGrant(is_admin=True)})
    manager = CustomGrants(
        projects={PROJECT: ProjectGrant(environments=dict.fromkeys(MODES, "manager"))}
    )
    resource = Resource(ORG, PROJECT, "production")
    for action in (Action.ENV_DELETE, Action.PROJECT_MANAGE):
        assert decide(Standing(custom=admin), action, resource) is Decision.ALLOW
        assert decide(Standing(custom=manager), action, resource) is Decision.FORBID


def test_project_read_needs_some_environment_grant() -> None:
    nothing = CustomGrants(
        projects={PROJECT: ProjectGrant(environments=dict.fromkeys(MODES, "no_access"))}
    )
    preview = CustomGrants(projects={PROJECT: ProjectGrant(environments={"preview": "viewer"})})
    resource = Resource(ORG, PROJECT)
    assert decide(Standing(custom=nothing), Action.PROJECT_READ, resource) is Decision.FORBID
    assert decide(Standing(custom=preview), Action.PROJECT_READ, resource) is Decision.ALLOW
    assert decide(Standing(custom=preview), Action.ORG_READ, Resource(ORG)) is Decision.ALLOW
