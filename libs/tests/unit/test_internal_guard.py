"""Internal APIs accept only their callers' own tokens, known by their SHA-256."""

from __future__ import annotations

import pytest
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.testclient import TestClient

from slipway_libs.actor import INTERNAL_TOKEN_HEADER, internal_guard, token_digest
from slipway_libs.http import create_app
from slipway_libs.settings import ServiceSettings


def _app(callers: dict[str, str] | None) -> FastAPI:
    router = APIRouter(dependencies=[Depends(internal_guard(callers))])

    @router.get("/internal/v1/whoami")
    async def whoami(request: Request) -> dict[str, str | None]:
        return {"caller": getattr(request.state, "internal_caller", None)}

    return create_app(service="test", routers=[router], readiness={})


def test_a_caller_is_known_by_its_own_token_and_no_other() -> None:
    client = TestClient(_app({"gateway": token_digest("gw-token")}))
    ok = client.get("/internal/v1/whoami", headers={INTERNAL_TOKEN_HEADER: "gw-token"})
    assert ok.status_code == 200 and ok.json() == {"caller": "gateway"}
    for token in ("other-service-token", "", token_digest("gw-token")):
        refused = client.get("/internal/v1/whoami", headers={INTERNAL_TOKEN_HEADER: token})
        assert refused.status_code == 403, token
    assert client.get("/internal/v1/whoami").status_code == 403


def test_callers_setting_parses_and_refuses_malformed_entries() -> None:
    digest = token_digest("t")
    settings = ServiceSettings(internal_callers=f"gateway:{digest}, deployer:{digest.upper()}")
    assert settings.internal_caller_digests() == {"gateway": digest, "deployer": digest}
    assert ServiceSettings().internal_caller_digests() == {}
    with pytest.raises(ValueError, match="name:sha256"):
        ServiceSettings(internal_callers="gateway:short").internal_caller_digests()
