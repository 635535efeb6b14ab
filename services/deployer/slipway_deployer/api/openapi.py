"""The deployer service's internal API as an OpenAPI document (``slipway_libs.openapi``)."""

from __future__ import annotations

from typing import Any

from slipway_deployer.api.answers import ANSWERS
from slipway_deployer.api.routes import build_router
from slipway_deployer.domain.state_machine import RefusalCode
from slipway_libs.openapi import NOTHING, Refusals, fragment


def openapi_fragment() -> dict[str, Any]:
    router = build_router(NOTHING, {}, revisions=NOTHING, catalog_wait_s=1.0)
    return fragment("deployer", [router], ANSWERS, refusals=REFUSALS)


I = "/internal/v1"  # noqa: E741
# what the state machine refuses a request (409, its RefusalCode), and a request naming a
# catalog revision the deployer's copy has not reached yet (usecases.freshness)
_STATE = [
    RefusalCode.ACTION_NOT_ALLOWED_IN_STATE,
    RefusalCode.ENVIRONMENT_BEING_DELETED,
    RefusalCode.ENVIRONMENT_DELETED,
    "CATALOG_NOT_CAUGHT_UP",
]
_STOP = [*_STATE, RefusalCode.NOTHING_TO_STOP]
REFUSALS: Refusals = {
    f"POST {I}/environments/{{env_id}}/deploy": {409: _STATE},
    f"POST {I}/environments/{{env_id}}/stop": {409: _STOP},
    f"POST {I}/environments/{{env_id}}/restart": {409: _STATE},
    f"POST {I}/environments/{{env_id}}/delete": {409: _STATE},
    f"POST {I}/environments/{{env_id}}/redeploy": {409: [*_STATE, "NOTHING_TO_REDEPLOY"]},
    f"POST {I}/environments/{{env_id}}/cancel": {
        409: [RefusalCode.NOTHING_TO_CANCEL, RefusalCode.DELETE_NOT_CANCELABLE]
    },
    f"POST {I}/services/{{service_id}}/deploy": {409: _STATE},
    f"POST {I}/services/{{service_id}}/stop": {409: _STOP},
    f"POST {I}/services/{{service_id}}/restart": {409: _STATE},
    f"POST {I}/services/{{service_id}}/run": {409: ["JOB_NOT_DEPLOYED", "JOB_ALREADY_RUNNING"]},
    f"POST {I}/deployments/{{deployment_id}}/rollback": {409: [*_STATE, "NOT_ROLLBACKABLE"]},
}
