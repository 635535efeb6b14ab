"""Environments as code, the pure parts: the plan of a file against a project as read, the
export of a project, and the secrets' values read before anything is applied."""

from __future__ import annotations

import pytest

from slipway_cli.blueprint.apply import secret_values
from slipway_cli.blueprint.export import export
from slipway_cli.blueprint.plan import PlanError, differs, plan
from slipway_cli.blueprint.state import Clusters, Environment, Project, Service, Variable
from slipway_cli.inputs import UsageError
from slipway_contracts.slipway_file import SlipwayFile

CLUSTERS = Clusters({"c1": {"id": "c1", "name": "local-host", "kind": "local"}})
FILE = SlipwayFile.model_validate(
    {
        "project": "shop",
        "variables": {"COMPANY": "Acme"},
        "environments": {
            "staging": {
                "mode": "staging",
                "secrets": {"API_KEY": {"from_env": "SHOP_API_KEY"}},
                "services": {
                    "web": {
                        "kind": "application",
                        "git": {"url": "https://example.com/a.git"},
                        "ports": [{"port": 8080, "public": True}],
                        "variables": {"ROLE": "frontend"},
                    }
                },
            }
        },
    }
)


def _as_made() -> Project:
    """The project the file makes, as the API answers it (the platform's defaults filled)."""
    web = Service(
        id="s1",
        version=3,
        name="web",
        kind="application",
        spec={
            "git": {"url": "https://example.com/a.git", "branch": "main", "commit": None},
            "ports": [{"port": 8080, "public": True, "protocol": "http", "default": True}],
            "min_instances": 1,
        },
        variables={"ROLE": Variable("v3", "ROLE", False, "frontend", 1)},
    )
    staging = Environment(
        id="e1",
        version=1,
        name="staging",
        mode="staging",
        cluster_id="c1",
        services={"web": web},
        variables={"API_KEY": Variable("v2", "API_KEY", True, None, 1)},
    )
    return Project(
        id="p1",
        version=1,
        name="shop",
        environments={"staging": staging},
        variables={"COMPANY": Variable("v1", "COMPANY", False, "Acme", 1)},
    )


def test_a_new_project_is_created_parents_first() -> None:
    planned = plan(FILE, None, CLUSTERS)
    assert [(c.action, c.what) for c in planned.changes] == [
        ("create", "project"),
        ("create", "environment"),
        ("create", "service"),
        ("create", "variable"),
        ("create", "variable"),
        ("create", "secret"),
    ]
    env = planned.changes[1]
    assert env.body == {"name": "staging", "mode": "staging", "cluster_id": "c1"}
    secret = next(c for c in planned.changes if c.what == "secret")
    assert secret.secret_from == "SHOP_API_KEY" and "value" not in secret.body
    assert planned.summary() == "6 to create, 0 to change, 0 to delete; 0 unchanged"


def test_what_the_file_made_plans_no_change() -> None:
    planned = plan(FILE, _as_made(), CLUSTERS)
    assert planned.changes == [] and planned.unchanged == 5 and planned.kept == []


def test_a_changed_field_is_one_update_with_its_version() -> None:
    current = _as_made()
    current.environments["staging"].services["web"].spec["ports"][0]["public"] = False
    [change] = plan(FILE, current, CLUSTERS).changes
    assert (change.action, change.what, change.target_id, change.version) == (
        "update",
        "service",
        "s1",
        3,
    )
    assert change.body == {"ports": [{"port": 8080, "public": True}]}
    assert change.describe() == "~ service staging/web: ports"


def test_what_the_file_leaves_out_is_kept_unless_pruned() -> None:
    current = _as_made()
    current.variables["OLD"] = Variable("v9", "OLD", False, "x", 4)
    assert plan(FILE, current, CLUSTERS).kept == ["variable OLD (project)"]
    [gone] = plan(FILE, current, CLUSTERS, prune=True).changes
    assert (gone.action, gone.target_id, gone.version) == ("delete", "v9", 4)


def test_an_unknown_cluster_or_a_changed_kind_is_refused() -> None:
    elsewhere = FILE.model_copy(deep=True)
    elsewhere.environments["staging"].cluster = "nowhere"
    with pytest.raises(PlanError, match="no cluster named 'nowhere'"):
        plan(elsewhere, None, CLUSTERS)
    current = _as_made()
    current.environments["staging"].services["web"].kind = "container"
    with pytest.raises(PlanError, match="kind cannot change"):
        plan(FILE, current, CLUSTERS)


def test_the_export_of_a_project_plans_no_change_and_holds_no_secret() -> None:
    document = export(_as_made(), CLUSTERS)
    assert document["environments"]["staging"]["cluster"] == "local"
    assert document["environments"]["staging"]["secrets"] == {"API_KEY": {"from_env": "API_KEY"}}
    again = SlipwayFile.model_validate(document)
    assert plan(again, _as_made(), CLUSTERS).changes == []
    assert not differs(FILE.model_dump(exclude_unset=True, exclude={"environments"}), document)


def test_secrets_are_read_before_anything_is_applied() -> None:
    planned = plan(FILE, None, CLUSTERS)
    with pytest.raises(UsageError, match=r"\$SHOP_API_KEY"):
        secret_values(planned, {})
    assert secret_values(planned, {"SHOP_API_KEY": "s3cr3t"}) == {"SHOP_API_KEY": "s3cr3t"}


def test_a_secret_written_as_a_value_is_refused_by_the_format() -> None:
    with pytest.raises(ValueError, match="SecretRef"):
        SlipwayFile.model_validate({"project": "p", "secrets": {"K": "plain text"}})
