"""The catalog service's internal API as an OpenAPI document (``slipway_libs.openapi``).

The service routes take a raw JSON object, which ``domain.service_specs`` validates itself (its
error paths start at the field, not at a union tag), so their bodies are declared here from the
same models: a create is one of the six kinds' specs, picked by ``kind`` (a discriminated
union); an update is a JSON merge patch of the stored spec (RFC 7396), whose schema is derived
from the specs' own (``merge_patch``).
"""

from __future__ import annotations

import copy
from typing import Any

from slipway_catalog.api.answers import ANSWERS
from slipway_catalog.api.routes import build_router
from slipway_catalog.domain.service_specs import ServiceSpec
from slipway_libs.openapi import NOTHING, REF, Refusals, fragment, schema_of

Schema = dict[str, Any]
# fields a patch may not change (``merge_update``): kept as they are, not nullable
_IMMUTABLE = ("kind", "engine")
PATCH_SUFFIX = "Patch"


def openapi_fragment() -> dict[str, Any]:
    specs = schema_of(ServiceSpec)
    bodies = {
        "POST /internal/v1/environments/{env_id}/services": {
            **specs,
            "description": "A service of one of the six kinds, picked by `kind`.",
        },
        "PATCH /internal/v1/services/{service_id}": merge_patch(specs),
    }
    router = build_router(NOTHING, NOTHING, NOTHING, {})
    return fragment("catalog", [router], ANSWERS, bodies, REFUSALS)


I = "/internal/v1"  # noqa: E741
# the 409s of the use cases (domain.clashes and the deletions that would orphan something)
REFUSALS: Refusals = {
    f"POST {I}/organizations/{{org_id}}/clusters": {409: ["CLUSTER_NAME_TAKEN"]},
    f"PATCH {I}/clusters/{{cluster_id}}": {409: ["CLUSTER_NAME_TAKEN"]},
    f"DELETE {I}/clusters/{{cluster_id}}": {409: ["CLUSTER_IN_USE"]},
    f"POST {I}/organizations/{{org_id}}/projects": {409: ["PROJECT_NAME_TAKEN"]},
    f"PATCH {I}/projects/{{project_id}}": {409: ["PROJECT_NAME_TAKEN"]},
    f"POST {I}/projects/{{project_id}}/environments": {409: ["ENVIRONMENT_NAME_TAKEN"]},
    f"PATCH {I}/environments/{{env_id}}": {409: ["ENVIRONMENT_NAME_TAKEN"]},
    f"POST {I}/environments/{{env_id}}/clone": {409: ["ENVIRONMENT_NAME_TAKEN"]},
    f"POST {I}/environments/{{env_id}}/stages": {409: ["STAGE_NAME_TAKEN"]},
    f"PATCH {I}/stages/{{stage_id}}": {409: ["STAGE_NAME_TAKEN"]},
    f"DELETE {I}/stages/{{stage_id}}": {409: ["STAGE_NOT_EMPTY"]},
    f"POST {I}/environments/{{env_id}}/services": {409: ["SERVICE_NAME_TAKEN"]},
    f"PATCH {I}/services/{{service_id}}": {409: ["SERVICE_NAME_TAKEN"]},
    f"POST {I}/organizations/{{org_id}}/git-credentials": {409: ["GIT_CREDENTIAL_NAME_TAKEN"]},
}


def merge_patch(union: Schema) -> Schema:
    """The schema of a JSON merge patch of any member of ``union`` (``$defs`` included): each
    object's fields optional and nullable (``null`` resets a field to its default), nested
    objects patched the same way (they merge key by key), arrays whole (they replace). Each
    patched object is a component of its own, ``<Name>Patch``; the kind is optional, so the
    members are told apart by their fields (``anyOf``), not by a discriminator."""
    definitions: Schema = union.get("$defs", {})
    patched: Schema = {}

    def ref(name: str) -> Schema:
        target = definitions[name]
        if "properties" not in target:
            return {"$ref": REF + name}
        if name + PATCH_SUFFIX not in patched:
            patched[name + PATCH_SUFFIX] = {}  # reserved first: a recursive model ends here
            patched[name + PATCH_SUFFIX] = obj(target)
        return {"$ref": REF + name + PATCH_SUFFIX}

    def node(schema: Schema) -> Schema:
        if "$ref" in schema:
            return ref(schema["$ref"].removeprefix(REF))
        if "properties" in schema:
            return obj(schema)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                rest = {k: v for k, v in schema.items() if k not in (key, "discriminator")}
                return {**rest, "anyOf": [node(member) for member in schema[key]]}
        return schema  # a scalar, an array (replaced whole) or a map

    def obj(schema: Schema) -> Schema:
        result = {k: v for k, v in schema.items() if k not in ("required", "properties")}
        result["title"] = schema.get("title", "") + PATCH_SUFFIX
        properties = {}
        for name, field in schema["properties"].items():
            if name in _IMMUTABLE:
                properties[name] = field
                continue
            field = {k: v for k, v in node(field).items() if k != "default"}
            members = field.get("anyOf", [field])
            if {"type": "null"} not in members:
                field = {"anyOf": [field, {"type": "null"}]}
            properties[name] = field
        result["properties"] = properties
        return result

    members = [node(member) for member in union["oneOf"]]
    return {
        "anyOf": members,
        "description": (
            "A JSON merge patch (RFC 7396) of the service's spec: the fields to change, objects "
            "merged key by key, lists replaced, `null` resetting a field to its default. The "
            "kind (and a database's engine) never change; a database's version and storage "
            "only grow."
        ),
        "$defs": {**copy.deepcopy(definitions), **patched},
    }
