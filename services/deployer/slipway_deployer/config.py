from pydantic_settings import SettingsConfigDict

from slipway_libs.settings import DatabaseServiceSettings


class DeployerSettings(DatabaseServiceSettings):
    """Environment variables prefixed `SLIPWAY_DEPLOYER_`."""

    model_config = SettingsConfigDict(env_prefix="SLIPWAY_DEPLOYER_", extra="ignore")

    http_port: int = 8084
