from pydantic_settings import SettingsConfigDict

from slipway_libs.settings import DatabaseServiceSettings


class BuilderSettings(DatabaseServiceSettings):
    """Environment variables prefixed `SLIPWAY_BUILDER_`."""

    model_config = SettingsConfigDict(env_prefix="SLIPWAY_BUILDER_", extra="ignore")

    http_port: int = 8083
