"""A custom role and the project as a whole (project-scoped variables reach every environment).

Found by the independent permission table (issue 10, item 11): a role managing only development
could write a project variable that production's services then receive. Changing the project as
a whole now needs the level on every mode; reading it, on some mode.
"""

from __future__ import annotations

import uuid

import pytest

from slipway_gateway.domain.policy import (
    Action,
    CustomGrants,
    Decision,
    ProjectGrant,
    Resource,
    Standing,
    decide,
)

ORG, PROJECT = uuid.uuid4(), uuid.uuid4()
WHOLE_PROJECT = Resource(organization_id=ORG, project_id=PROJECT)
MODES = ("production", "staging", "development", "preview")


def _custom(modes: dict[str, str], *, is_admin: bool = False) -> Standing:
    grant = ProjectGrant(is_admin=is_admin, environments=modes)
    return Standing(custom=CustomGrants(projects={PROJECT: grant}))


@pytest.mark.parametrize(
    ("modes", "is_admin", "write", "read"),
    [
        ({"development": "manager"}, False, Decision.FORBID, Decision.ALLOW),
        (
            {m: "manager" for m in MODES if m != "production"},
            False,
            Decision.FORBID,
            Decision.ALLOW,
        ),
        ({m: "manager" for m in MODES}, False, Decision.ALLOW, Decision.ALLOW),
        (
            {"production": "deployer"} | {m: "manager" for m in MODES[1:]},
            False,
            Decision.FORBID,
            Decision.ALLOW,
        ),
        ({}, True, Decision.ALLOW, Decision.ALLOW),
        ({"development": "no_access"}, False, Decision.FORBID, Decision.FORBID),
    ],
)
def test_changing_the_whole_project_needs_every_mode(
    modes: dict[str, str], is_admin: bool, write: Decision, read: Decision
) -> None:
    standing = _custom(modes, is_admin=is_admin)
    assert decide(standing, Action.ENV_MANAGE, WHOLE_PROJECT) is write
    assert decide(standing, Action.ENV_READ, WHOLE_PROJECT) is read


def test_one_environment_still_follows_its_own_mode() -> None:
    standing = _custom({"development": "manager"})
    development = Resource(organization_id=ORG, project_id=PROJECT, environment_mode="development")
    production = Resource(organization_id=ORG, project_id=PROJECT, environment_mode="production")
    assert decide(standing, Action.ENV_MANAGE, development) is Decision.ALLOW
    assert decide(standing, Action.ENV_MANAGE, production) is Decision.FORBID
