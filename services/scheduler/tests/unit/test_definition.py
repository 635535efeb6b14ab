from slipway_scheduler.bootstrap import DEFINITION
from slipway_scheduler.config import SchedulerSettings


def test_settings_are_read_from_the_service_prefix(monkeypatch) -> None:
    monkeypatch.setenv("SLIPWAY_SCHEDULER_DATABASE_URL", "postgresql://x@127.0.0.1/y")
    monkeypatch.setenv("SLIPWAY_SCHEDULER_HTTP_PORT", "9999")
    monkeypatch.setenv("SLIPWAY_SCHEDULER_SEALING_KEYS", "k1:" + "A" * 43 + "=")
    settings = SchedulerSettings()
    assert settings.database_url == "postgresql://x@127.0.0.1/y"
    assert settings.http_port == 9999


def test_the_service_owns_a_database_with_migrations() -> None:
    assert DEFINITION.name == "scheduler"
    assert DEFINITION.has_database
    assert DEFINITION.migrations is not None and DEFINITION.migrations.is_dir()
