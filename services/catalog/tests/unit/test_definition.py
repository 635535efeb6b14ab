import pytest
from pydantic import ValidationError

from slipway_catalog.bootstrap import DEFINITION
from slipway_catalog.config import CatalogSettings


def test_settings_are_read_from_the_service_prefix(monkeypatch) -> None:
    monkeypatch.setenv("SLIPWAY_CATALOG_DATABASE_URL", "postgresql://x@127.0.0.1/y")
    monkeypatch.setenv("SLIPWAY_CATALOG_HTTP_PORT", "9999")
    monkeypatch.setenv("SLIPWAY_CATALOG_SEALING_KEYS", "k1:" + "A" * 43 + "=")
    settings = CatalogSettings()
    assert settings.database_url == "postgresql://x@127.0.0.1/y"
    assert settings.http_port == 9999 and settings.local_runtime


def test_missing_sealing_keys_fail_at_start_up(monkeypatch) -> None:
    monkeypatch.setenv("SLIPWAY_CATALOG_DATABASE_URL", "postgresql://x@127.0.0.1/y")
    monkeypatch.delenv("SLIPWAY_CATALOG_SEALING_KEYS", raising=False)
    with pytest.raises(ValidationError, match="sealing_keys"):
        CatalogSettings()


def test_the_service_owns_a_database_with_migrations() -> None:
    assert DEFINITION.name == "catalog"
    assert DEFINITION.migrations is not None and DEFINITION.migrations.is_dir()
