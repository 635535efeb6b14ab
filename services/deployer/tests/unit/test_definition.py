import pytest
from pydantic import ValidationError

from slipway_deployer.bootstrap import DEFINITION
from slipway_deployer.config import DeployerSettings


def test_settings_are_read_from_the_service_prefix(monkeypatch) -> None:
    monkeypatch.setenv("SLIPWAY_DEPLOYER_DATABASE_URL", "postgresql://x@127.0.0.1/y")
    monkeypatch.setenv("SLIPWAY_DEPLOYER_HTTP_PORT", "9999")
    monkeypatch.setenv("SLIPWAY_CATALOG_SEALING_KEYS", "k1:" + "A" * 43 + "=")
    settings = DeployerSettings()
    assert settings.database_url == "postgresql://x@127.0.0.1/y"
    assert settings.http_port == 9999
    assert settings.transport_keys.startswith("k1:")  # the catalog's keys on one machine


def test_the_transport_keys_are_required(monkeypatch) -> None:
    monkeypatch.setenv("SLIPWAY_DEPLOYER_DATABASE_URL", "postgresql://x@127.0.0.1/y")
    for name in (
        "SLIPWAY_DEPLOYER_TRANSPORT_KEYS",
        "SLIPWAY_CATALOG_TRANSPORT_KEYS",
        "SLIPWAY_CATALOG_SEALING_KEYS",
    ):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValidationError, match="TRANSPORT_KEYS"):
        DeployerSettings()


def test_the_service_owns_a_database_with_migrations() -> None:
    assert DEFINITION.name == "deployer"
    assert DEFINITION.has_database
    assert DEFINITION.migrations is not None and DEFINITION.migrations.is_dir()
