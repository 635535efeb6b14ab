"""The catalog's typed models: what the use cases rely on besides their fields."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from slipway_catalog.domain.rules import DeploymentRule, SavedRule
from slipway_catalog.domain.services import Service
from slipway_catalog.domain.variables import Variable
from slipway_catalog.usecases.environments import DEFAULT_RULE
from slipway_resolver import built_ins

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _variable(*, is_secret: bool, sealed: bytes | None) -> Variable:
    return Variable(
        id=uuid.uuid4(),
        organization_id=uuid.uuid4(),
        project_id=uuid.uuid4(),
        environment_id=None,
        service_id=None,
        scope="project",
        parent_id=uuid.uuid4(),
        key="K",
        kind="value",
        value=None if is_secret else "v",
        value_sealed=sealed,
        is_secret=is_secret,
        mount_path=None,
        description="",
        version=1,
        created_at=NOW,
        updated_at=NOW,
        deleted_at=None,
    )


def test_a_secret_answers_its_sealed_value_and_a_plain_variable_has_none() -> None:
    assert _variable(is_secret=True, sealed=b"blob").sealed() == b"blob"
    with pytest.raises(ValueError, match="not a secret"):
        _variable(is_secret=False, sealed=None).sealed()


def test_a_saved_rule_gives_back_the_settings_it_was_saved_with() -> None:
    put = DeploymentRule(
        auto_stop=True, timezone="Europe/Paris", weekdays=["mon", "fri"], stop_time="19:00"
    )
    saved = SavedRule(
        environment_id=uuid.uuid4(),
        organization_id=uuid.uuid4(),
        version=7,
        updated_at=NOW,
        **{**put.model_dump(), "weekdays": tuple(put.weekdays)},
    )
    # what a clone saves again: the same keys as the default rule, and a valid rule
    assert set(saved.settings()) == set(DEFAULT_RULE)
    assert DeploymentRule.model_validate(saved.settings()) == put


def test_a_service_gives_the_built_in_variables_what_they_read() -> None:
    api = Service(
        id=uuid.uuid4(),
        organization_id=uuid.uuid4(),
        project_id=uuid.uuid4(),
        environment_id=uuid.uuid4(),
        name="api",
        kind="container",
        spec={"ports": [{"port": 9000, "public": False}]},
        stage_id=None,
        version=1,
        created_at=NOW,
        updated_at=NOW,
        deleted_at=None,
    )
    found = built_ins(
        project_id=api.project_id,
        environment={"id": api.environment_id, "name": "staging"},
        services=[api.reachable()],
        service=api.reachable(),
    )
    values = {v.key: v.value for v in found}
    assert values["SLIPWAY_SERVICE_NAME"] == "api"
    assert (values["SLIPWAY_API_HOST"], values["SLIPWAY_API_PORT"]) == ("api", "9000")
