"""``slipway.yaml``: a project as code (``slipway plan|apply|export``).

The file names the project and what it should hold: its environments (by name), each one's
services (by name) and variables at every scope. A service is written as the public API takes
it (``POST /environments/{env}/services``: its kind's fields, see the OpenAPI document): only the
fields written are compared, the platform's defaults fill the rest. A secret is written by
reference, never its value: ``{from_env: NAME}`` reads the value from the applying user's
environment variable ``NAME`` when the secret is created (an existing secret's value is never
read back, so it is not compared). The committed JSON Schema is ``contracts/slipway-file.schema
.json``: ``python -m slipway_contracts.slipway_file`` writes it, a test fails when it is stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "slipway-file.schema.json"
SCHEMA_ID = "https://slipway.dev/schemas/slipway-file.schema.json"

_KEY = r"^[A-Za-z_][A-Za-z0-9_]*$"

Mode = Literal["production", "staging", "development", "preview"]
Kind = Literal["application", "container", "database", "cron_job", "lifecycle_job", "helm"]


class SecretRef(BaseModel):
    """A secret by reference: its value comes from an environment variable of whoever applies."""

    model_config = ConfigDict(extra="forbid")

    from_env: str = Field(
        pattern=_KEY, description="The applying user's environment variable holding the value."
    )


class Scoped(BaseModel):
    """Variables and secrets of one scope (a service's beat its environment's, which beat the
    project's)."""

    model_config = ConfigDict(extra="forbid")

    variables: dict[str, str] = Field(
        default_factory=dict,
        description="Plain variables: key -> value.",
        json_schema_extra={"propertyNames": {"pattern": _KEY}},
    )
    secrets: dict[str, SecretRef] = Field(
        default_factory=dict,
        description="Secrets: key -> where its value comes from (never the value itself).",
        json_schema_extra={"propertyNames": {"pattern": _KEY}},
    )


class ServiceSpec(Scoped):
    """One service: its kind and, as the public API takes them, that kind's fields (``git``,
    ``image``, ``ports``, ``engine``, ``schedule`` ...)."""

    model_config = ConfigDict(extra="allow")

    kind: Kind


class EnvironmentSpec(Scoped):
    model_config = ConfigDict(extra="forbid")

    mode: Mode
    cluster: str = Field(
        default="local",
        description="The cluster's name or id (default: the organization's local cluster).",
    )
    services: dict[str, ServiceSpec] = Field(
        default_factory=dict,
        description="Services by name.",
    )


class SlipwayFile(Scoped):
    """A project and what it holds."""

    model_config = ConfigDict(extra="forbid", title="slipway.yaml")

    version: Literal[1] = 1
    project: str = Field(min_length=1, max_length=100, description="The project's name.")
    environments: dict[str, EnvironmentSpec] = Field(
        default_factory=dict,
        description="Environments by name.",
    )


def json_schema() -> dict[str, Any]:
    schema = SlipwayFile.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


def render() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    """Writes the schema (``--check``: writes nothing, fails when the committed one is stale)."""
    if "--check" in argv:
        if SCHEMA_PATH.read_text() != render():
            sys.stderr.write(f"{SCHEMA_PATH} is stale: python -m slipway_contracts.slipway_file\n")
            return 1
        return 0
    SCHEMA_PATH.write_text(render())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
