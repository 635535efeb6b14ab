"""The ``slipway.yaml`` format: the committed JSON Schema is the one the models give, and it
takes the README's example and refuses a secret written as a value."""

from __future__ import annotations

import json

import jsonschema
import pytest

from slipway_contracts.slipway_file import SCHEMA_PATH, json_schema, render

EXAMPLE = {
    "version": 1,
    "project": "shop",
    "variables": {"COMPANY": "Acme"},
    "environments": {
        "staging": {
            "mode": "staging",
            "secrets": {"API_KEY": {"from_env": "SHOP_API_KEY"}},
            "services": {
                "web": {
                    "kind": "application",
                    "git": {"url": "https://github.com/acme/web.git", "branch": "main"},
                    "ports": [{"port": 8080, "public": True}],
                }
            },
        }
    },
}


def test_the_committed_schema_is_the_generated_one() -> None:
    assert SCHEMA_PATH.read_text() == render(), "stale: python -m slipway_contracts.slipway_file"


def test_the_schema_takes_a_file_and_refuses_a_secret_value() -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(EXAMPLE, schema)
    bad = json.loads(json.dumps(EXAMPLE))
    bad["environments"]["staging"]["secrets"] = {"API_KEY": "s3cr3t"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
    assert json_schema()["$schema"].endswith("2020-12/schema")
