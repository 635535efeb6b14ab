from pydantic_settings import SettingsConfigDict

from slipway_libs.settings import DatabaseServiceSettings


class CatalogSettings(DatabaseServiceSettings):
    """Environment variables prefixed `SLIPWAY_CATALOG_`."""

    model_config = SettingsConfigDict(env_prefix="SLIPWAY_CATALOG_", extra="ignore")

    http_port: int = 8082
