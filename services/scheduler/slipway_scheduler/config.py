from pydantic_settings import SettingsConfigDict

from slipway_libs.settings import DatabaseServiceSettings


class SchedulerSettings(DatabaseServiceSettings):
    """Environment variables prefixed `SLIPWAY_SCHEDULER_`."""

    model_config = SettingsConfigDict(env_prefix="SLIPWAY_SCHEDULER_", extra="ignore")

    http_port: int = 8085
