"""The policy point, route by route, against the expectation written apart from it
(``tests/expected_permissions.py``).

The unit under test is ``decide`` fed with each member route's action as the route table tags it:
a wrong grant in ``BUILTIN_MATRIX``, a wrong custom-role rule or a route tagged with the wrong
action all fail here. The expected answer always comes from the expectation, never from the
policy module: every built-in role, outsiders, and custom grant sets at every level and
combination against environments of every mode, other projects and other clusters.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Mapping

import pytest

from services.gateway.tests.expected_permissions import (
    BUILTIN_ROLES,
    CLUSTER_LEVELS,
    EXPECTED,
    EXPECTED_WITHOUT_ROUTE,
    MODE_LEVELS,
    CustomNeed,
    Grants,
    ProjectGrant,
    Target,
    custom_allows,
)
from slipway_gateway.api.table import ROUTES, RouteSpec
from slipway_gateway.domain import policy
from slipway_gateway.domain.policy import Action, Decision, Resource, Standing, decide

ORG = uuid.uuid4()
PROJECT, OTHER_PROJECT, CLUSTER, OTHER_CLUSTER = (str(uuid.uuid4()) for _ in range(4))
MODES = ("production", "staging", "development", "preview")
MEMBER_ROUTES = [spec for spec in ROUTES if spec.access == "member"]


def _route_id(spec: RouteSpec) -> str:
    return f"{spec.method} {spec.path}"


def _action(spec: RouteSpec) -> Action:
    assert spec.action is not None, f"{_route_id(spec)} declares no action"
    return spec.action


def test_every_member_route_has_an_action_and_an_expected_row() -> None:
    for spec in MEMBER_ROUTES:
        _action(spec)
        assert EXPECTED[(spec.method, spec.path)].access == "member", _route_id(spec)


def test_every_action_is_pinned_by_a_route_or_by_name() -> None:
    """A new action needs an expectation before it can be granted to anyone."""
    pinned = {_action(spec).value for spec in MEMBER_ROUTES} | set(EXPECTED_WITHOUT_ROUTE)
    assert pinned == {action.value for action in Action}


@pytest.mark.parametrize("spec", MEMBER_ROUTES, ids=_route_id)
def test_builtin_roles_and_outsiders(spec: RouteSpec) -> None:
    rule = EXPECTED[(spec.method, spec.path)]
    for target in _targets(spec.path, rule.custom):
        resource = _resource(target)
        for role in BUILTIN_ROLES:
            want = Decision.ALLOW if role in rule.roles else Decision.FORBID
            assert decide(Standing(role=role), _action(spec), resource) is want, (role, target)
        # not a member: the organization is hidden, whatever the action
        assert decide(None, _action(spec), resource) is Decision.HIDE
        assert decide(Standing(), _action(spec), resource) is Decision.HIDE


@pytest.mark.parametrize("action_name", sorted(EXPECTED_WITHOUT_ROUTE))
def test_powers_without_a_route(action_name: str) -> None:
    """Billing and webhooks: built-in roles as documented; custom roles never, whatever they
    hold (the README: custom roles never reach webhooks or billing)."""
    action = Action(action_name)
    resource = Resource(ORG, uuid.UUID(PROJECT), "production", uuid.UUID(CLUSTER))
    for role in BUILTIN_ROLES:
        want = Decision.ALLOW if role in EXPECTED_WITHOUT_ROUTE[action_name] else Decision.FORBID
        assert decide(Standing(role=role), action, resource) is want, role
    everything = Grants(
        projects={PROJECT: ProjectGrant(is_admin=True, modes=dict.fromkeys(MODES, "manager"))},
        clusters={CLUSTER: "admin"},
    )
    assert decide(Standing(custom=_policy_grants(everything)), action, resource) is (
        Decision.FORBID
    )


# custom grant sets: on PROJECT, levels on one or two modes, with and without is_admin; on
# CLUSTER, every level (OTHER_PROJECT and OTHER_CLUSTER are never granted)
_MODE_GRANTS: list[Mapping[str, str]] = [
    {},
    *({"staging": level} for level in MODE_LEVELS[1:]),
    {"development": "manager"},
    {"staging": "viewer", "production": "deployer"},
]
GRANT_SETS = [
    Grants(
        projects={PROJECT: ProjectGrant(is_admin=is_admin, modes=modes)},
        clusters={} if cluster == "none" else {CLUSTER: cluster},
    )
    for modes, is_admin, cluster in itertools.product(_MODE_GRANTS, (False, True), CLUSTER_LEVELS)
] + [Grants()]


@pytest.mark.parametrize("spec", MEMBER_ROUTES, ids=_route_id)
def test_custom_roles(spec: RouteSpec) -> None:
    rule = EXPECTED[(spec.method, spec.path)]
    wrong = []
    for grants, target in itertools.product(GRANT_SETS, _targets(spec.path, rule.custom)):
        want = custom_allows(rule.custom, grants, target)
        got = decide(Standing(custom=_policy_grants(grants)), _action(spec), _resource(target))
        if got is not (Decision.ALLOW if want else Decision.FORBID):
            wrong.append(f"{grants} on {target}: {got.value}, expected allowed={want}")
    assert not wrong, f"{len(wrong)} wrong answers, e.g.\n" + "\n".join(wrong[:5])


def _targets(path: str, need: CustomNeed) -> list[Target]:
    """What a request on ``path`` may touch: each shape the gateway resolves, granted or not."""
    clusters = (CLUSTER, OTHER_CLUSTER)
    if need.where == "new_environment":
        sources = MODES if need.reads_source else (None,)
        return [
            Target(PROJECT, mode, cluster, source_mode=source)
            for mode, cluster, source in itertools.product(MODES, clusters, sources)
        ] + [Target(OTHER_PROJECT, "staging", CLUSTER)]
    if "{cluster}" in path:
        return [Target(cluster=cluster) for cluster in clusters]
    if "{project}" in path:
        return [Target(project=PROJECT), Target(project=OTHER_PROJECT)]
    if path.startswith("/organizations/{org}"):
        return [Target()]
    return [
        *(Target(PROJECT, mode, cluster) for mode, cluster in itertools.product(MODES, clusters)),
        Target(OTHER_PROJECT, "staging", CLUSTER),
    ]


def _resource(target: Target) -> Resource:
    def as_uuid(value: str | None) -> uuid.UUID | None:
        return uuid.UUID(value) if value else None

    return Resource(
        organization_id=ORG,
        project_id=as_uuid(target.project),
        environment_mode=target.mode,
        cluster_id=as_uuid(target.cluster),
        copied_mode=target.source_mode,
    )


def _policy_grants(grants: Grants) -> policy.CustomGrants:
    return policy.CustomGrants(
        projects={
            uuid.UUID(project): policy.ProjectGrant(
                is_admin=grant.is_admin, environments=dict(grant.modes)
            )
            for project, grant in grants.projects.items()
        },
        clusters={uuid.UUID(cluster): level for cluster, level in grants.clusters.items()},
    )
