from slipway_builder.bootstrap import DEFINITION
from slipway_builder.config import BuilderSettings


def test_registry_and_buildah_storage_come_from_the_devstack_names(monkeypatch) -> None:
    monkeypatch.setenv("SLIPWAY_BUILDER_DATABASE_URL", "postgresql://x@127.0.0.1/y")
    monkeypatch.setenv("SLIPWAY_REGISTRY", "127.0.0.1:5999")
    monkeypatch.setenv("SLIPWAY_BUILDAH_ROOT", "/tmp/r")
    monkeypatch.setenv("SLIPWAY_BUILDER_MAX_PARALLEL_BUILDS", "3")
    settings = BuilderSettings()
    assert settings.registry == "127.0.0.1:5999"
    assert settings.buildah_root == "/tmp/r"
    assert settings.max_parallel_builds == 3


def test_the_service_owns_a_database_with_migrations() -> None:
    assert DEFINITION.name == "builder"
    assert DEFINITION.migrations is not None and DEFINITION.migrations.is_dir()
