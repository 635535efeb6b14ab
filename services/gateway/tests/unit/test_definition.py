from slipway_gateway.bootstrap import DEFINITION
from slipway_gateway.config import UPSTREAMS, GatewaySettings


def test_gateway_is_stateless_and_knows_every_upstream(monkeypatch) -> None:
    monkeypatch.setenv("SLIPWAY_GATEWAY_CATALOG_URL", "http://127.0.0.1:9")
    settings = GatewaySettings()
    assert not DEFINITION.has_database
    assert set(settings.upstreams()) == set(UPSTREAMS)
    assert settings.upstreams()["catalog"] == "http://127.0.0.1:9"
