from pydantic_settings import SettingsConfigDict

from slipway_libs.settings import DatabaseServiceSettings


class LogsSettings(DatabaseServiceSettings):
    """Environment variables prefixed `SLIPWAY_LOGS_`."""

    model_config = SettingsConfigDict(env_prefix="SLIPWAY_LOGS_", extra="ignore")

    http_port: int = 8086
