from pydantic_settings import SettingsConfigDict

from slipway_libs.settings import DatabaseServiceSettings


class IdentitySettings(DatabaseServiceSettings):
    """Environment variables prefixed `SLIPWAY_IDENTITY_`."""

    model_config = SettingsConfigDict(env_prefix="SLIPWAY_IDENTITY_", extra="ignore")

    http_port: int = 8081
