"""The identity service's internal API as an OpenAPI document (``slipway_libs.openapi``)."""

from __future__ import annotations

from typing import Any

from slipway_identity.api.answers import ANSWERS
from slipway_identity.api.routes import build_router
from slipway_libs.openapi import NOTHING, Refusals, fragment


def openapi_fragment() -> dict[str, Any]:
    return fragment("identity", [build_router(NOTHING, NOTHING, {})], ANSWERS, refusals=REFUSALS)


I = "/internal/v1"  # noqa: E741
ORG = f"{I}/organizations/{{org_id}}"
# the 409s of the use cases (accounts, invitations, roles, organizations)
REFUSALS: Refusals = {
    f"POST {I}/users": {409: ["EMAIL_TAKEN"]},
    f"POST {ORG}/members": {409: ["ALREADY_MEMBER"]},
    f"PATCH {ORG}/members/{{user_id}}": {409: ["LAST_OWNER"]},
    f"DELETE {ORG}/members/{{user_id}}": {409: ["LAST_OWNER"]},
    f"POST {I}/invitations/{{invitation_id}}/accept": {409: ["INVITATION_NOT_PENDING"]},
    f"POST {ORG}/roles": {409: ["ROLE_NAME_TAKEN"]},
    f"PATCH {ORG}/roles/{{role_id}}": {409: ["ROLE_NAME_TAKEN"]},
    f"DELETE {ORG}/roles/{{role_id}}": {409: ["ROLE_IN_USE"]},
    f"POST {ORG}/transfer-ownership": {409: ["ALREADY_OWNER"]},
}
