from slipway_logs.bootstrap import DEFINITION
from slipway_logs.config import LogsSettings


def test_settings_are_read_from_the_service_prefix(monkeypatch) -> None:
    monkeypatch.setenv("SLIPWAY_LOGS_DATABASE_URL", "postgresql://x@127.0.0.1/y")
    monkeypatch.setenv("SLIPWAY_LOGS_HTTP_PORT", "9999")
    settings = LogsSettings()
    assert settings.database_url == "postgresql://x@127.0.0.1/y"
    assert settings.http_port == 9999


def test_the_service_owns_a_database_with_migrations() -> None:
    assert DEFINITION.name == "logs"
    assert DEFINITION.has_database
    assert DEFINITION.migrations is not None and DEFINITION.migrations.is_dir()


def test_a_follows_lifetime_is_15_minutes_by_default(monkeypatch) -> None:
    # a follow outlives a revoked access by at most its lifetime: the resume (Last-Event-ID)
    # goes through the gateway's authorization again
    monkeypatch.setenv("SLIPWAY_LOGS_DATABASE_URL", "postgresql://x@127.0.0.1/y")
    assert LogsSettings().follow_lifetime_s == 900.0
