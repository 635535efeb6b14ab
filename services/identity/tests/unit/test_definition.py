import pytest
from pydantic import ValidationError

from slipway_identity.bootstrap import DEFINITION
from slipway_identity.config import IdentitySettings


def test_settings_are_read_from_the_service_prefix(monkeypatch) -> None:
    monkeypatch.setenv("SLIPWAY_IDENTITY_DATABASE_URL", "postgresql://x@127.0.0.1/y")
    monkeypatch.setenv("SLIPWAY_IDENTITY_HTTP_PORT", "9999")
    monkeypatch.setenv("SLIPWAY_IDENTITY_SEALING_KEYS", "k1:" + "A" * 43 + "=")
    settings = IdentitySettings()
    assert settings.database_url == "postgresql://x@127.0.0.1/y"
    assert settings.http_port == 9999


def test_missing_secrets_fail_at_start_up_with_their_name(monkeypatch) -> None:
    monkeypatch.setenv("SLIPWAY_IDENTITY_DATABASE_URL", "postgresql://x@127.0.0.1/y")
    monkeypatch.delenv("SLIPWAY_IDENTITY_SEALING_KEYS", raising=False)
    with pytest.raises(ValidationError, match="sealing_keys"):
        IdentitySettings()


def test_the_service_owns_a_database_with_migrations() -> None:
    assert DEFINITION.name == "identity"
    assert DEFINITION.has_database
    assert DEFINITION.migrations is not None and DEFINITION.migrations.is_dir()
